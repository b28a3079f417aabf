"""What handing the voice to the gpu queue costs (VIGIL_PROSODY_QUEUE=gpu), next to what it saves.

    .venv/bin/python -m bench.voice_job_bench [--seconds 60] [--batches 1 8 32] [--repeats 5]
                                              [--device cpu]

Per clip of ``--seconds`` of 16 kHz audio (a synthetic voice with pauses, as in the tests):

* the hand-over, through the real code on a private SQLite database and keyring (a temporary
  ``VIGIL_VAR_DIR``): pack (:mod:`screening.ml.media.voice_payload`), encrypt and store
  (``privacy.storage.encrypted_bytes_write``, the patient's data key), read and decrypt in memory
  (``encrypted_bytes_read``), unpack;
* the prosody itself on the torch path (``screening.ml.media.prosody.prosody_batch``), per clip,
  for each batch size in ``--batches`` (one call per batch of identical-length clips).

Median of ``--repeats`` runs each. Prints a table, the machine, the date and the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _voice(seconds: float, seed: int) -> object:
    import math

    import numpy as np

    sr = 16_000
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    f0 = 120.0 * 2.0 ** (0.08 * np.sin(2 * math.pi * 0.7 * t))
    phase = 2 * math.pi * np.cumsum(f0) / sr
    signal = sum(np.sin(k * phase) / k**2 for k in range(1, 20))
    envelope = (0.55 - 0.45 * np.cos(2 * math.pi * 4.0 * t)) ** 1.5
    gate = (np.sin(2 * math.pi * 0.2 * t) > -0.6).astype(float)  # a pause every 5 s
    out = 0.3 * signal / np.max(np.abs(signal)) * envelope * gate
    return (out + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def _median_ms(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from bench.batch_bench import _environment  # the benches' private SQLite and keyring

    var = Path(tempfile.mkdtemp(prefix="vigil-voice-bench-"))
    os.environ.update(_environment(var, "cpu", None))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import numpy as np
    import torch
    from django.core.management import call_command

    from privacy.keys import create_local_keyring
    from privacy.storage import encrypted_bytes_read, encrypted_bytes_write, storage_name_for
    from screening.ml.media.prosody import prosody_batch
    from screening.ml.media.voice_payload import voice_payload_pack, voice_payload_unpack

    create_local_keyring(Path(os.environ["VIGIL_KEYRING_FILE"]))
    call_command("migrate", verbosity=0)

    clip = _voice(args.seconds, seed=0)
    assert isinstance(clip, np.ndarray)
    meta = {"outcome": {"face": {"smile": 0.3}, "transcript": "words " * 150}, "attempt": 1}
    patient_id, object_id = uuid.uuid4(), uuid.uuid4()
    name = storage_name_for(patient_id=patient_id, object_id=object_id)
    packed = voice_payload_pack(samples=clip, sample_rate=16_000, meta=meta)

    def write() -> None:
        encrypted_bytes_write(data=packed, name=name, patient_id=patient_id, object_id=object_id)

    def read() -> None:
        encrypted_bytes_read(
            name=name, patient_id=patient_id, object_id=object_id, max_bytes=len(packed) + 1
        )

    write()  # the patient's data key is created on first use: not part of the figure
    rows = [
        (
            "pack",
            _median_ms(
                lambda: voice_payload_pack(samples=clip, sample_rate=16_000, meta=meta),
                args.repeats,
            ),
        ),
        ("encrypt + store", _median_ms(write, args.repeats)),
        ("read + decrypt (memory)", _median_ms(read, args.repeats)),
        ("unpack", _median_ms(lambda: voice_payload_unpack(packed), args.repeats)),
    ]
    handover = sum(ms for _, ms in rows)

    prosody_rows = []
    for size in args.batches:
        clips = [clip] * size
        prosody_batch(clips[:1], 16_000, backend="torch", device=args.device)  # warm
        ms = _median_ms(
            lambda c=clips: prosody_batch(c, 16_000, backend="torch", device=args.device),
            args.repeats,
        )
        prosody_rows.append((size, ms / size))

    print(f"# voice job bench, {dt.date.today().isoformat()}, {platform.node()}")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"# clip: {args.seconds:g} s of 16 kHz audio = {len(packed) / 1e6:.2f} MB payload")
    print(f"# command: python -m bench.voice_job_bench {' '.join(argv or sys.argv[1:])}")
    print()
    print("| step (per clip) | ms (median) | x real time |")
    print("|---|---:|---:|")
    for label, ms in rows:
        print(f"| hand-over: {label} | {ms:.1f} | {args.seconds * 1000 / ms:,.0f} |")
    print(f"| **hand-over, total** | **{handover:.1f}** | {args.seconds * 1000 / handover:,.0f} |")
    for size, ms in prosody_rows:
        print(
            f"| prosody (torch, {args.device}), batch {size} | {ms:.1f} | "
            f"{args.seconds * 1000 / ms:,.0f} |"
        )


if __name__ == "__main__":
    main()
