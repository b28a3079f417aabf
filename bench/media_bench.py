"""Media pipeline benchmark: one 60 s 720p talking-face video, end to end.

    .venv/bin/python -m bench.media_bench [--seconds 60] [--backend torch|librosa] [--runs 2]

Makes (in a child process, so its memory does not count) a 1280x720 30 fps H.264 + AAC MP4 in a
temporary folder: skimage's astronaut (head and shoulders, selfie framing) drifting across a grey
background and tilting her head, with espeak-ng speech (a diary-like paragraph repeated with
pauses; a synthetic voice when espeak-ng is missing). Then, in this process, loads the models once
(timed apart: a worker does it once) and runs
:func:`screening.ml.media.pipeline.analyze_media` ``--runs`` times with full consent (decode,
prosody, face at 5 fps, transcript), printing each stage's time, the total and the process's peak
RSS (``ru_maxrss``, which includes the loaded models and libraries). It also prints each run's
CPU time (user + system, all threads): on a machine shared with other jobs the wall time grows
with the load, the CPU time much less.
Goal: under 20 s per 60 s video on 2 CPU cores, under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS = 1280, 720, 30
SR = 16_000
SENTENCES = (
    "I have been sleeping badly for a few weeks and I feel tired most of the day.",
    "Some mornings it is hard to get up, but talking to my sister helps a little.",
    "Work has been busy and I keep worrying about small things.",
    "Yesterday I went for a walk in the park and the weather was lovely.",
    "I forgot to call my friend back, so I will try again tonight.",
    "My appetite is not great, and I skipped lunch twice this week.",
    "On Sunday we cooked dinner together and watched an old film.",
    "I would like to feel more rested before the exams start next month.",
)


def _speech(seconds: float) -> np.ndarray:
    """Different sentences, speeds and pitches with pauses between them, ``seconds`` long."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.screening.ml.media import media_gen

    parts: list[np.ndarray] = []
    total, i = 0, 0
    while total < seconds * SR:
        if media_gen.HAS_ESPEAK:
            sentence = SENTENCES[i % len(SENTENCES)]
            chunk = media_gen.espeak(sentence, speed=150 + 10 * (i % 4), pitch=40 + 5 * (i % 3))
        else:
            chunk = media_gen.voiced(120.0 + 10 * (i % 4), 4.0, pauses=[(2.0, 0.3)])
        gap = np.zeros(int((0.5 + 0.3 * (i % 3)) * SR), dtype=np.float32)
        parts += [chunk, gap]
        total += chunk.size + gap.size
        i += 1
    return np.concatenate(parts)[: int(seconds * SR)].astype(np.float32)


def make_video(path: Path, seconds: float) -> Path:
    import av
    import cv2
    from skimage import data

    # A selfie framing: the astronaut's head and shoulders (rows 0-300, columns 90-390 of the
    # 512x512 image) scaled to 600x600, so the face is about 40 % of the frame's height.
    head = np.ascontiguousarray(np.asarray(data.astronaut())[0:300, 90:390, :3])
    face = cv2.resize(head, (600, 600), interpolation=cv2.INTER_CUBIC)
    background = np.full((HEIGHT, WIDTH, 3), 110, dtype=np.uint8)
    audio = _speech(seconds)
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        sound = container.add_stream("aac", rate=SR)
        sound.layout = "mono"
        for i in range(round(seconds * FPS)):
            t = i / FPS
            angle = 6.0 * math.sin(2 * math.pi * t / 4.0)  # a slow head tilt
            rot = cv2.getRotationMatrix2D((300, 250), angle, 1.0)
            moved = cv2.warpAffine(face, rot, (600, 600), borderMode=cv2.BORDER_REPLICATE)
            x = int(340 + 200 * math.sin(2 * math.pi * t / 12.0))  # drifting left and right
            y = int(60 + 50 * math.sin(2 * math.pi * t / 7.0))
            frame_rgb = background.copy()
            frame_rgb[y : y + 600, x : x + 600] = moved
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, audio.size, 1024):
            chunk = np.ascontiguousarray(audio[start : start + 1024].reshape(1, -1))
            aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            aframe.sample_rate, aframe.pts, aframe.time_base = SR, start, Fraction(1, SR)
            container.mux(sound.encode(aframe))
        container.mux(sound.encode(None))
    return path


def _cpu_s() -> float:
    """This process's CPU time (user + system, all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backend", choices=("torch", "librosa"), default="torch")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--make-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--video", type=Path, help="use (or make and keep) this video file")
    args = parser.parse_args()
    if args.make_only:
        make_video(args.make_only, args.seconds)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    folder = Path(tempfile.mkdtemp(prefix="vigil-media-bench-"))
    video = args.video or folder / "talk_720p.mp4"
    started = time.perf_counter()
    if not video.exists():
        subprocess.run(  # noqa: S603 (a fixed argv: this script)
            [sys.executable, __file__, "--make-only", str(video), "--seconds", str(args.seconds)],
            check=True,
        )
    print(
        f"made {video.name}: {WIDTH}x{HEIGHT} {FPS} fps, {args.seconds:.0f} s, "
        f"{video.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
    )

    from screening.ml.media.face import get_face_analyzer
    from screening.ml.media.install import models_install
    from screening.ml.media.pipeline import MediaConfig, analyze_media
    from screening.ml.media.prosody import prosody
    from screening.ml.media.transcript import get_transcriber

    rss_start = _rss_mb()
    load_start = os.getloadavg()
    config = MediaConfig(
        max_seconds=300,
        prosody_backend=args.backend,
        whisper_device="cpu",
        whisper_beam_size=args.beam_size,
    )
    models_install(config.models_dir)
    loads: dict[str, float] = {}
    t0 = time.perf_counter()
    get_face_analyzer(config.models_dir)
    loads["face models (verify + load)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    get_transcriber("cpu")
    loads["whisper (verify + load)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tone = (0.3 * np.sin(2 * np.pi * 150 * np.arange(SR) / SR)).astype(np.float32)
    prosody(tone, SR, backend=args.backend)
    loads[f"prosody warm-up ({args.backend})"] = time.perf_counter() - t0

    runs = []
    cpu_s: list[float] = []
    for _ in range(args.runs):
        before = _cpu_s()
        result = analyze_media(video, config=config, consent={"voice", "face", "text"})
        cpu_s.append(_cpu_s() - before)
        runs.append(result)
    last = runs[-1]
    stages = ["decode_audio", "prosody", "decode_video", "face", "transcript", "total"]
    print(f"\nvideo: {video.name}, {last.duration_s or 0:.1f} s")
    print(f"machine: {os.cpu_count()} CPU(s), {platform.processor() or platform.machine()}")
    print(f"load average at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} (1 min)")
    print(f"python {platform.python_version()}, backend {args.backend}, beam {args.beam_size}")
    print("\none-off model loading (once per worker process):")
    for name, seconds in loads.items():
        print(f"  {name:34s} {seconds:7.2f} s")
    header = "stage".ljust(14) + "".join(f"run {i + 1:>2} (s)".rjust(13) for i in range(len(runs)))
    print("\n" + header)
    for stage in stages:
        cells = "".join(f"{r.timings_ms.get(stage, float('nan')) / 1000:13.2f}" for r in runs)
        print(stage.ljust(14) + cells)
    print("cpu (u+s)".ljust(14) + "".join(f"{c:13.2f}" for c in cpu_s))
    peak = _rss_mb()
    print(f"\npeak RSS {peak:.0f} MB (before loading models {rss_start:.0f} MB)")
    face = last.face.as_dict() if last.face else {}
    print(
        f"face presence {face.get('face_presence')}, frames {face.get('frames_total')}, "
        f"smile {face.get('smile')}, head motion {face.get('head_motion_deg_per_s')} deg/s; "
        f"words {len(last.transcript.text.split()) if last.transcript else 0}; "
        f"distress {last.distress.score:.3f} (confidence {last.distress.confidence:.2f})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seconds": args.seconds,
                    "backend": args.backend,
                    "loads_s": loads,
                    "runs_ms": [r.timings_ms for r in runs],
                    "runs_cpu_s": cpu_s,
                    "peak_rss_mb": peak,
                    "features": last.features_dict(),
                },
                indent=2,
            )
        )
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()  # a --video file is kept


if __name__ == "__main__":
    main()
