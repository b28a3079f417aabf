"""Text scoring throughput: Vigil's scorer end to end vs sentence-transformers' encode.

    .venv/bin/python -m bench.text_bench [--texts 2000] [--batch-size 32] [--repeats 3]
                                         [--mask on|off|both]

Texts: the first ``--texts`` GoEmotions dev comments when ../shared/datasets is present (diary-like
Reddit sentences), otherwise generated diary sentences. For each mode (fp32, int8 dynamic
quantisation with per-channel weights) it times, median of ``--repeats`` runs, one after the other
in this process:

- ``score_texts``: the management command end to end on a JSONL file (read, passage split,
  encoder, valence/emotion/risk heads, VADER, crisis rules, JSONL write), scorer already loaded;
- ``TextScorer.score``: the same without the file I/O;
- ``SentenceTransformer(path).encode``: the same model, same texts, same batch size (in int8 mode
  its Linear layers are quantised the same way).

The three are timed in interleaved rounds (command, scorer, encode; ``--repeats`` rounds) and the
median of each is reported.

``--mask``: the scorer masks person and place names before encoding (``on``, the default, as in
production), reads the text as is (``off``), or ``both``: each round then runs the command and the
scorer once with masking and once without, so the two rows share the same load.

The machine's load average is printed: other processes on a shared machine slow every column.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SUBJECTS = ["I", "My sister", "My friend", "Mum", "My boss", "We", "The doctor", "My partner"]
VERBS = [
    "talked about the weekend",
    "felt tired after work",
    "went for a long walk by the river",
    "argued about money again",
    "laughed at an old photo",
    "could not sleep because of the noise",
    "cooked dinner together",
    "cancelled the appointment",
]
TAILS = [
    "and it made me feel a bit better about everything.",
    "but honestly I still feel anxious and alone tonight.",
    "which was nice, I think I needed that today.",
    "so I stayed in bed most of the afternoon.",
    "and I am grateful for small things like that.",
    "and I keep wondering whether anything will change.",
]


def _texts(n: int) -> tuple[list[str], str]:
    dev = ROOT.parent / "shared" / "datasets" / "goemotions" / "group" / "dev.tsv"
    if dev.is_file():
        rows = [ln.split("\t")[0] for ln in dev.read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r.strip()][:n]
        if len(rows) == n:
            return rows, "GoEmotions dev (first rows)"
    rng = random.Random(0)
    out = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(TAILS)}" for _ in range(n)]
    return out, "generated diary sentences"


def _stock_int8(model: Any) -> Any:
    """torch's dynamic int8 quantisation with per-channel weights and nothing else: the
    scorer's int8 mode scales each token's activations on their own
    (encoder.quantize_linear_int8)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--mask", choices=["on", "off", "both"], default="on")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from sentence_transformers import SentenceTransformer

    from screening.ml.text.encoder import encoder_verified_path
    from screening.ml.text.scorer import get_text_scorer

    texts, source = _texts(args.texts)
    scorer0 = get_text_scorer(device="cpu")
    ntok = [scorer0.encoder.count_tokens(t) + 2 for t in texts]
    print(f"# text bench {dt.date.today().isoformat()} on {platform.node()}")
    print(
        f"# {len(texts)} texts ({source}), mean {statistics.mean(ntok):.1f} wordpieces "
        f"incl. [CLS]/[SEP]; batch {args.batch_size}; median of {args.repeats}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.2f}"
    )
    path = encoder_verified_path()
    tmp = Path(tempfile.mkdtemp(prefix="text-bench-"))
    src = tmp / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    variants = {"on": [True], "off": [False], "both": [True, False]}[args.mask]
    rows = []
    for mode in args.modes:
        quantized = mode == "int8"
        scorer = get_text_scorer(device="cpu", quantized=quantized)
        scorer.encoder.batch_size = args.batch_size
        scorer.score(texts[:64])  # warm-up
        st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        if quantized:  # stock dynamic quantisation (one activation scale per batch), as a
            st = _stock_int8(st)  # sentence-transformers user would run it
        st.encode(texts[:64], batch_size=args.batch_size)

        def run_command(q: bool = quantized) -> None:
            argv_ = ["--input", str(src), "--output", str(tmp / "out.jsonl"), "--no-progress"]
            argv_ += ["--device", "cpu"]
            argv_ += ["--batch-size", str(args.batch_size)] + (["--quantized"] if q else [])
            call_command("score_texts", *argv_, stdout=io.StringIO())

        def run_scorer(sc: Any = scorer) -> None:
            sc.score(texts)

        def run_st(m: Any = st) -> None:
            m.encode(texts, batch_size=args.batch_size, show_progress_bar=False)

        # interleaved rounds: a load spike on the shared machine hits all columns alike
        times: dict[str, list[float]] = {"st": []}
        for _ in range(args.repeats):
            for masked in variants:
                # the command's get_text_scorer() returns this same cached scorer
                scorer.mask_entities = masked
                for key, fn in (("cmd", run_command), ("score", run_scorer)):
                    t0 = time.perf_counter()
                    fn()
                    times.setdefault(f"{key}-{masked}", []).append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_st()
            times["st"].append(time.perf_counter() - t0)
        scorer.mask_entities = True
        r_st = len(texts) / statistics.median(times["st"])
        for masked in variants:
            r_cmd = len(texts) / statistics.median(times[f"cmd-{masked}"])
            r_score = len(texts) / statistics.median(times[f"score-{masked}"])
            label = mode if masked else f"{mode}, names not masked"
            rows.append((label, r_cmd, r_score, r_st))
    print()
    print(
        "| mode | score_texts end to end (texts/s) | TextScorer.score (texts/s) "
        "| SentenceTransformer.encode (texts/s) | end to end / ST |"
    )
    print("|---|---|---|---|---|")
    for mode, r_cmd, r_score, r_st in rows:
        print(f"| {mode} | {r_cmd:.1f} | {r_score:.1f} | {r_st:.1f} | {r_cmd / r_st:.2f}x |")
    print(f"\n# load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
