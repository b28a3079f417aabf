"""Voice prosody benchmark: the librosa reference, the torch fast path, openSMILE and Praat.

    .venv/bin/python -m bench.prosody_bench [--repeats 5] [--cpu-batch 8]
    .venv/bin/python -m bench.prosody_bench --batch 256 --device cuda     # the GPU figure

One 60 s clip (espeak-ng sentences at 175 wpm joined by 0.4-1.2 s pauses; a synthetic voice with
pauses when espeak-ng is absent) is analysed by each contender; each time is the median of
``--repeats`` runs after one untimed warm-up run. Printed: seconds, x real time (audio seconds per
second of compute), and:

* ``librosa pyin``: the whole reference feature set (:func:`prosody_librosa`, pYIN dominates);
* ``librosa yin``: ``librosa.yin`` pitch only (no voicing, no other features), for scale;
* ``torch cpu x1`` / ``torch cpu xN``: the whole fast-path feature set, one clip / a batch;
* ``opensmile eGeMAPSv02``: functionals of the eGeMAPS v02 set (reference only);
* ``praat pitch``: ``parselmouth`` ``to_pitch`` (autocorrelation, floor 65 Hz), pitch only.

Then the ratio of the torch path to openSMILE (goal >= 10x), mean F0 of both backends against
Praat's (goal within 2 %), and speech rate for espeak-ng at 120/175/250 wpm (should rise).

``--batch N --device D`` adds a batch of N one-minute clips (the clip, each rolled by a different
offset) on device D: the contours (pitch, RMS, voicing clean-up, on the device) and the whole
feature set (plus the batched post-processing and the per-clip peak picking on the CPU)
separately; goal 50,000x real time on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from screening.ml.media import prosody as p
from screening.ml.media import prosody_torch as pt
from tests.screening.ml.media import media_gen

SR = 16_000
CLIP_S = 60.0


def make_clip(seconds: float = CLIP_S, *, speed: int = 175) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(7)
    if media_gen.HAS_ESPEAK:
        sentences = [s.strip() + "." for s in media_gen.SENTENCE.split(".") if s.strip()]
        sentences += [
            "I went for a walk yesterday and it was nice to be outside.",
            "My appetite is not great, and I keep waking up at four in the morning.",
        ]
        spoken = [media_gen.espeak(text=s, speed=speed) for s in sentences]
        parts: list[np.ndarray] = []
        total = 0
        i = 0
        while total < seconds * SR:
            parts.append(spoken[i % len(spoken)])
            parts.append(np.zeros(int(rng.uniform(0.4, 1.2) * SR), dtype=np.float32))
            total += parts[-2].size + parts[-1].size
            i += 1
        audio = np.concatenate(parts)[: int(seconds * SR)]
        return audio.astype(np.float32), f"espeak-ng -s {speed}, pauses 0.4-1.2 s"
    pauses = [(t, 0.6) for t in np.arange(3.0, seconds - 1, 4.0)]
    audio = media_gen.voiced(140.0, seconds, pauses=pauses, vibrato_cents=80)
    return audio, "synthetic voice (espeak-ng absent), 0.6 s pause every 4 s"


def timed(
    fn: Callable[[], Any], repeats: int, *, sync: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds (all threads) of ``repeats`` runs."""
    fn()  # warm-up: numba compilation, torch kernels, openSMILE config load
    walls, cpus = [], []
    for _ in range(repeats):
        if sync:
            sync()
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        if sync:
            sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def praat_mean_f0(audio: np.ndarray) -> float:
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SR)
    pitch = sound.to_pitch(time_step=0.01, pitch_floor=65.0, pitch_ceiling=500.0)
    values = pitch.selected_array["frequency"]
    return float(values[values > 0].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--batch", type=int, default=0, help="clips in the --device batch run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-reference", action="store_true", help="only the --batch run")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: fair on a shared machine)"
    )
    parser.add_argument(
        "--decode-1080p",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also make a SECONDS-long 1920x1080 10 fps H.264+AAC video (cached in var/bench) "
        "and measure decoding's peak memory (e.g. 300 for five minutes)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    audio, source = make_clip()
    rows: list[tuple[str, float, float]] = []
    results: dict[str, Any] = {
        "clip": source,
        "clip_seconds": CLIP_S,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
    }
    print(
        f"clip: {CLIP_S:.0f} s, {source}; median of {args.repeats}; torch threads "
        f"{torch.get_num_threads()}"
    )

    def add(name: str, measured: tuple[float, float], audio_seconds: float = CLIP_S) -> None:
        wall, cpu = measured
        rows.append((name, wall, cpu))
        results[name] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "x_real_time_wall": audio_seconds / wall,
            "x_real_time_cpu": audio_seconds / max(cpu, 1e-9),
            "audio_s": audio_seconds,
        }

    if not args.skip_reference:
        import librosa
        import opensmile

        add("librosa pyin (full set)", timed(lambda: p.prosody_librosa(audio, SR), args.repeats))
        add(
            "librosa yin (pitch only)",
            timed(
                lambda: librosa.yin(
                    audio, fmin=65, fmax=500, sr=SR, frame_length=1024, hop_length=160
                ),
                args.repeats,
            ),
        )
        add(
            "torch cpu x1 (full set)",
            timed(lambda: pt.prosody_torch_batch([audio], SR, device="cpu"), args.repeats),
        )
        batch = [np.roll(audio, 997 * i) for i in range(args.cpu_batch)]
        add(
            f"torch cpu x{args.cpu_batch} (full set)",
            timed(lambda: pt.prosody_torch_batch(batch, SR, device="cpu"), args.repeats),
            CLIP_S * args.cpu_batch,
        )
        smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        add("opensmile eGeMAPSv02", timed(lambda: smile.process_signal(audio, SR), args.repeats))
        add("praat pitch (parselmouth)", timed(lambda: praat_mean_f0(audio), args.repeats))

        print(
            f"\n{'contender':34s} {'wall s':>9s} {'cpu s':>9s} {'xRT wall':>10s} {'xRT cpu':>10s}"
        )
        for name, wall, cpu in rows:
            r = results[name]
            print(
                f"{name:34s} {wall:9.4f} {cpu:9.4f} {r['x_real_time_wall']:10.1f} "
                f"{r['x_real_time_cpu']:10.1f}"
            )

        batch_name = f"torch cpu x{args.cpu_batch} (full set)"
        for unit in ("wall_s", "cpu_s"):
            torch_s = results["torch cpu x1 (full set)"][unit]
            smile_s = results["opensmile eGeMAPSv02"][unit]
            batch_per_clip = results[batch_name][unit] / args.cpu_batch
            results[f"speedup_vs_opensmile_x1_{unit}"] = smile_s / torch_s
            results[f"speedup_vs_opensmile_batched_{unit}"] = smile_s / batch_per_clip
            print(
                f"torch vs openSMILE ({unit[:-2]} time): {smile_s / torch_s:.1f}x faster "
                f"(one clip), {smile_s / batch_per_clip:.1f}x per clip in a batch of "
                f"{args.cpu_batch} (goal >= 10x)"
            )

        praat = praat_mean_f0(audio)
        lib = p.prosody_librosa(audio, SR)
        fast = pt.prosody_torch_batch([audio], SR, device="cpu")[0]
        results["mean_f0"] = {"praat": praat, "librosa": lib.f0_mean_hz, "torch": fast.f0_mean_hz}
        print(
            f"mean F0: praat {praat:.2f} Hz, librosa {lib.f0_mean_hz:.2f} Hz "
            f"({100 * (lib.f0_mean_hz / praat - 1):+.2f} %), torch {fast.f0_mean_hz:.2f} Hz "
            f"({100 * (fast.f0_mean_hz / praat - 1):+.2f} %) (goal within 2 %)"
        )
        print(
            f"pause ratio: librosa {lib.pause_ratio:.3f}, torch {fast.pause_ratio:.3f}; "
            f"speech rate: librosa {lib.speech_rate:.2f}/s, torch {fast.speech_rate:.2f}/s"
        )

        if media_gen.HAS_ESPEAK:
            rates: dict[int, dict[str, float]] = {}
            for wpm in (120, 175, 250):
                speech, _ = make_clip(20.0, speed=wpm)
                rates[wpm] = {
                    "librosa": p.prosody_librosa(speech, SR).speech_rate,
                    "torch": pt.prosody_torch_batch([speech], SR, device="cpu")[0].speech_rate,
                }
            results["speech_rate_by_wpm"] = rates
            print(
                "speech rate (nuclei/s) by espeak-ng -s: "
                + ", ".join(
                    f"{w} wpm: librosa {r['librosa']:.2f} torch {r['torch']:.2f}"
                    for w, r in rates.items()
                )
            )

    if args.batch:
        device = pt.resolve_device(args.device)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        clips = [np.roll(audio, 997 * i) for i in range(args.batch)]
        mono = [p.as_mono_16k(c, SR) for c in clips]
        chunk = pt.CUDA_CHUNK_FRAMES if device.type == "cuda" else pt.CPU_CHUNK_FRAMES

        def contours_only() -> None:
            with torch.inference_mode():
                pt._analyse(mono, device, chunk)

        kernels, kernels_cpu = timed(contours_only, args.repeats, sync=sync)
        whole, whole_cpu = timed(
            lambda: pt.prosody_torch_batch(clips, SR, device=args.device), args.repeats, sync=sync
        )
        total = CLIP_S * args.batch
        results[f"batch {args.batch} {device.type}"] = {
            "contours_seconds": kernels,
            "contours_cpu_seconds": kernels_cpu,
            "contours_x_real_time": total / kernels,
            "full_seconds": whole,
            "full_cpu_seconds": whole_cpu,
            "full_x_real_time": total / whole,
        }
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(
            f"\nbatch of {args.batch} x {CLIP_S:.0f} s on {name}: contours {kernels:.3f} s wall, "
            f"{kernels_cpu:.3f} s cpu ({total / kernels:,.0f}x real time); full feature set "
            f"{whole:.3f} s wall, {whole_cpu:.3f} s cpu ({total / whole:,.0f}x real time) "
            f"(goal 50,000x on a GPU)"
        )

    if args.decode_1080p:
        results["decode_1080p"] = decode_memory(args.decode_1080p)

    if args.json:
        print(json.dumps(results, indent=2, default=float))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:  # noqa: PTH123
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def decode_memory(seconds: float) -> dict[str, float]:
    """Decode a long 1080p video with :mod:`screening.ml.media.decode` and report peak RSS growth
    (sampled after every yielded frame) against the size of the decoded video as RGB."""
    from pathlib import Path

    from screening.ml.media.decode import decode_audio, iter_frames

    folder = Path("var/bench")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"decode_1080p_{int(seconds)}s.mp4"
    if not path.exists():
        started = time.perf_counter()
        voice = media_gen.voiced(
            140.0, seconds, pauses=[(t, 0.5) for t in range(2, int(seconds), 5)]
        )
        media_gen.make_video(path, seconds=seconds, width=1920, height=1080, fps=10, audio=voice)
        print(
            f"made {path} ({path.stat().st_size / 2**20:.0f} MB) in "
            f"{time.perf_counter() - started:.0f} s"
        )
    base = _rss_mb()
    peak = base
    started = time.perf_counter()
    frames = 0
    for _frame in iter_frames(path, fps=5, max_side=480, max_seconds=seconds + 10):
        frames += 1
        peak = max(peak, _rss_mb())
    frames_s = time.perf_counter() - started
    started = time.perf_counter()
    audio = decode_audio(path, max_seconds=seconds + 10)
    audio_s = time.perf_counter() - started
    peak = max(peak, _rss_mb())
    rgb_mb = seconds * 10 * 1920 * 1080 * 3 / 2**20
    out = {
        "video_seconds": seconds,
        "sampled_frames": frames,
        "frames_wall_s": frames_s,
        "audio_wall_s": audio_s,
        "audio_samples": float(audio.samples.size if audio else 0),
        "rss_base_mb": base,
        "rss_peak_growth_mb": peak - base,
        "whole_video_rgb_mb": rgb_mb,
    }
    print(
        f"\ndecode {seconds:.0f} s of 1920x1080 @10 fps: {frames} frames sampled at 5 fps in "
        f"{frames_s:.1f} s, audio in {audio_s:.1f} s; peak RSS growth {peak - base:.0f} MB "
        f"(the whole video as RGB would be {rgb_mb:,.0f} MB)"
    )
    return out


if __name__ == "__main__":
    main()
