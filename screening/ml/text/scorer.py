"""Score diary texts: valence, emotions, suicide-risk level, VADER and the crisis detector.

Pipeline for each text: split into passages that fit the encoder (sentence aware, with char
offsets) -> embed all passages of all texts in one batched pass -> heads per passage -> aggregate:
valence and emotions weighted by passage length; suicide risk from the *worst* passage plus the
document's passage statistics through a calibrated at-risk probability. The rule-based crisis
detector runs on the whole text; an explicit statement forces ``at_risk`` (the ML head can raise
concern, never erase it). No Django here; the scorer is loaded once per process
(:func:`get_text_scorer`).
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from screening.ml.artifacts import ModelInfo, sha256_file
from screening.ml.text.crisis import CrisisResult, detect_crisis, detector_info
from screening.ml.text.encoder import MAX_TOKENS, MiniLMEncoder
from screening.ml.text.entities import find_entities, mask_entities, mask_spans
from screening.ml.text.heads import (
    CRISIS_EXPLICIT,
    HEADS_DIR,
    Head,
    head_name,
    heads_adapter,
    load_head,
    risk_document_probs,
    risk_features,
    sigmoid,
    softmax,
)
from screening.ml.text.passages import Passage, split_passages

RISK_LEVELS: tuple[str, ...] = ("supportive", "indicator", "ideation", "behavior", "attempt")
AT_RISK_LEVELS: frozenset[str] = frozenset({"ideation", "behavior", "attempt"})
# C-SSRS reading of the crisis detector's explicit categories (docs/crisis-detector.md)
CRISIS_TO_LEVEL: dict[str, str] = {
    "passive_ideation": "ideation",
    "active_ideation": "ideation",
    "plan": "behavior",
    "imminent_intent": "behavior",
}


@dataclass(frozen=True)
class TextScore:
    valence: float
    valence_probs: dict[str, float]
    emotions: dict[str, float]
    emotions_present: tuple[str, ...]
    risk_level: str
    risk_probs: dict[str, float]
    at_risk: bool
    at_risk_probability: float
    worst_passage: tuple[int, int]
    vader_compound: float
    crisis: CrisisResult
    n_passages: int
    models: tuple[ModelInfo, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; holds offsets but never the text itself."""
        return {
            "valence": self.valence,
            "valence_probs": dict(self.valence_probs),
            "emotions": dict(self.emotions),
            "emotions_present": list(self.emotions_present),
            "risk_level": self.risk_level,
            "risk_probs": dict(self.risk_probs),
            "at_risk": self.at_risk,
            "at_risk_probability": self.at_risk_probability,
            "worst_passage": list(self.worst_passage),
            "vader_compound": self.vader_compound,
            "crisis": self.crisis.as_dict(),
            "n_passages": self.n_passages,
            "models": [m.as_dict() for m in self.models],
        }


def _vader_info() -> tuple[Any, ModelInfo]:
    import vaderSentiment.vaderSentiment as vs
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = Path(vs.__file__).resolve().parent / "vader_lexicon.txt"
    try:
        version = importlib.metadata.version("vaderSentiment")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    sha = sha256_file(lexicon) if lexicon.is_file() else ""
    return SentimentIntensityAnalyzer(), ModelInfo(
        name="vaderSentiment", version=version, sha256=sha
    )


def _r(x: float) -> float:
    return round(float(x), 4)


class TextScorer:
    """Loads the verified encoder and heads once; :meth:`score` is safe to call repeatedly."""

    def __init__(
        self,
        *,
        device: str = "auto",
        quantized: bool = False,
        batch_size: int = 32,
        mask_entities: bool = True,
        heads_dir: Path = HEADS_DIR,
    ):
        # heads fitted on the embeddings of the encoder actually used (fp32 or int8, with the
        # adapter they name, if any: verified by its hash and merged into the weights at load)
        self._valence: Head = load_head(head_name("valence", quantized=quantized), heads_dir)
        self._emotions: Head = load_head(head_name("emotions", quantized=quantized), heads_dir)
        self._risk: Head = load_head(head_name("risk", quantized=quantized), heads_dir)
        self._encoder = MiniLMEncoder(
            device=device,
            quantized=quantized,
            batch_size=batch_size,
            adapter=heads_adapter((self._valence, self._emotions, self._risk), heads_dir),
        )
        # person and place names reach the encoder as one fixed name and city (entities.py);
        # offsets, VADER and the crisis detector keep the original text. False: text as is.
        self.mask_entities = mask_entities
        self._vader, vader_info = _vader_info()
        self._models: tuple[ModelInfo, ...] = (
            self._encoder.info,
            self._valence.info,
            self._emotions.info,
            self._risk.info,
            vader_info,
            detector_info(),
        )
        risk_labels = self._risk.labels
        if tuple(risk_labels) != RISK_LEVELS:
            raise ValueError("risk head labels differ from the scorer's levels")
        self._at_idx = [RISK_LEVELS.index(lab) for lab in sorted(AT_RISK_LEVELS)]
        self._threshold = float(self._risk.meta["at_risk_threshold"])
        self._worst_weight = float(self._risk.meta["worst_weight"])
        self._emo_thresholds = np.asarray(self._emotions.meta["thresholds"], dtype=np.float64)

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        return self._models

    @property
    def encoder(self) -> MiniLMEncoder:
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(list(texts))

    def passages(self, text: str) -> list[Passage]:
        found = split_passages(text, self._encoder.tokenizer, max_tokens=MAX_TOKENS)
        return found or [Passage(0, len(text), 0)]

    def _split_all(self, texts: Sequence[str]) -> list[list[Passage]]:
        """Passages of every text (see :meth:`_split_tokens`)."""
        return self._split_tokens(texts)[0]

    def _split_tokens(
        self, texts: Sequence[str]
    ) -> tuple[list[list[Passage]], list[list[int] | None]]:
        """Passages of every text, and the wordpiece ids of the one-passage texts.

        One batched tokenizer call settles the one-line texts that fit the encoder: the whole
        (trimmed) text is their only passage and its ids are reused by the encoder, so those
        texts are tokenized once. Other texts go through :func:`split_passages`.
        """
        out: list[list[Passage] | None] = [None] * len(texts)
        ids_of: list[list[int] | None] = [None] * len(texts)
        simple = [i for i, t in enumerate(texts) if "\n" not in t and "\r" not in t and t.strip()]
        if simple:
            ids = self._encoder.tokenize([self._encoder_text(texts[i]) for i in simple])
            for i, toks in zip(simple, ids, strict=True):
                if len(toks) <= MAX_TOKENS - 2:  # fits: the whole (trimmed) text is one passage
                    t = texts[i]
                    start = len(t) - len(t.lstrip())
                    out[i] = [Passage(start, len(t.rstrip()), len(toks))]
                    ids_of[i] = list(toks)
        split = [o if o is not None else self.passages(t) for o, t in zip(out, texts, strict=True)]
        return split, ids_of

    def _encoder_text(self, text: str) -> str:
        """What the encoder reads for ``text``: names masked unless ``mask_entities`` is off."""
        return mask_entities(text) if self.mask_entities else text

    def _passage_texts(self, text: str, ps: list[Passage]) -> list[str]:
        """The encoder's input for each passage of ``text`` (names masked, see entities.py)."""
        if not self.mask_entities:
            return [text[p.start : p.end] for p in ps]
        spans = find_entities(text)
        return [mask_spans(text, spans, p.start, p.end) for p in ps]

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        split, known = self._split_tokens(texts)
        # wordpiece ids of every passage: reused from the split where known, else one batch call
        todo = [
            passage
            for t, ps, k in zip(texts, split, known, strict=True)
            if k is None
            for passage in self._passage_texts(t, ps)
        ]
        fresh = iter(self._encoder.tokenize(todo))
        flat: list[list[int]] = []
        for ps, k in zip(split, known, strict=True):
            if k is not None:
                flat.append(k)
            else:
                flat.extend(next(fresh) for _ in ps)
        x = self._encoder.encode_ids(flat)
        # the heads run once over every passage of every text; aggregation is per text
        v_all = softmax(self._valence.linear(x))
        e_all = sigmoid(self._emotions.linear(x))
        r_all = softmax(self._risk.linear(x))
        out: list[TextScore] = []
        pos = 0
        for text, ps in zip(texts, split, strict=True):
            sl = slice(pos, pos + len(ps))
            pos += len(ps)
            out.append(self._score_one(text, ps, v_all[sl], e_all[sl], r_all[sl]))
        return out

    def _score_one(
        self, text: str, ps: list[Passage], v: np.ndarray, e: np.ndarray, probs: np.ndarray
    ) -> TextScore:
        lengths = np.array([max(p.end - p.start, 1) for p in ps], dtype=np.float64)
        w = lengths / lengths.sum()
        # valence
        vp = w @ v
        vlabels = self._valence.labels
        valence = float(vp[vlabels.index("positive")] - vp[vlabels.index("negative")])
        # emotions
        ep = w @ e
        elabels = self._emotions.labels
        present = tuple(lab for j, lab in enumerate(elabels) if ep[j] >= self._emo_thresholds[j])
        # crisis rules and suicide risk
        crisis = detect_crisis(text)
        r = probs[:, self._at_idx].sum(axis=1)
        worst = int(r.argmax())
        explicit = crisis.category in CRISIS_EXPLICIT
        if explicit:
            worst = self._passage_of_crisis(crisis, ps, default=worst)
        doc = risk_document_probs(probs, lengths, worst, self._worst_weight)
        feats = risk_features(probs, lengths, self._at_idx, crisis.category)
        cal_w = self._risk.arrays["cal_W"].reshape(-1)
        cal_b = float(self._risk.arrays["cal_b"].reshape(-1)[0])
        p_at_risk = float(sigmoid(np.asarray(feats @ cal_w + cal_b)))
        at_risk = explicit or p_at_risk >= self._threshold
        group = (
            [i for i, lab in enumerate(RISK_LEVELS) if lab in AT_RISK_LEVELS]
            if at_risk
            else [i for i, lab in enumerate(RISK_LEVELS) if lab not in AT_RISK_LEVELS]
        )
        level = RISK_LEVELS[max(group, key=lambda i: doc[i])]
        if explicit:
            # the words themselves say it: the rule's category sets the level (the 5-level head
            # is weak between ideation/behavior/attempt, see the risk model card)
            level = CRISIS_TO_LEVEL[crisis.category]
        # VADER, per passage, weighted like the heads
        vader = float(
            sum(
                wi * self._vader.polarity_scores(text[p.start : p.end])["compound"]
                for wi, p in zip(w, ps, strict=True)
            )
        )
        return TextScore(
            valence=_r(valence),
            valence_probs={lab: _r(vp[j]) for j, lab in enumerate(vlabels)},
            emotions={lab: _r(ep[j]) for j, lab in enumerate(elabels)},
            emotions_present=present,
            risk_level=level,
            risk_probs={lab: _r(doc[j]) for j, lab in enumerate(RISK_LEVELS)},
            at_risk=bool(at_risk),
            at_risk_probability=_r(p_at_risk),
            worst_passage=(ps[worst].start, ps[worst].end),
            vader_compound=_r(vader),
            crisis=crisis,
            n_passages=len(ps),
            models=self._models,
        )

    @staticmethod
    def _passage_of_crisis(crisis: CrisisResult, ps: list[Passage], *, default: int) -> int:
        spans = [s for s in crisis.spans if s.category in CRISIS_EXPLICIT]
        if not spans:
            return default
        order = ("passive_ideation", "active_ideation", "plan", "imminent_intent")
        top = max(spans, key=lambda s: order.index(s.category))
        for i, p in enumerate(ps):
            if p.start <= top.start < p.end:
                return i
        return default


def score_each(
    scorer: Any, texts: Sequence[str], *, reraise: tuple[type[BaseException], ...] = ()
) -> list[Any]:
    """``scorer.score(texts)`` in one call; if that call fails, each text alone, so that one text
    the scorer cannot handle fails only itself: its place holds the exception (callers log the
    exception's class, never its message, which may quote the text). Exceptions of the
    ``reraise`` classes are not a text's failure and propagate at once (a worker passes its
    soft time limit: out of time, scoring every text again alone would only run into the hard
    limit)."""
    try:
        return list(scorer.score(texts))
    except reraise:
        raise
    except Exception:
        out: list[Any] = []
        for text in texts:
            try:
                out.append(scorer.score([text])[0])
            except reraise:
                raise
            except Exception as exc:
                out.append(exc)
        return out


class ScorerCacheInfo(NamedTuple):
    """Like ``functools.lru_cache``'s ``cache_info()``."""

    hits: int
    misses: int
    currsize: int


class _ScorerCache:
    """The process-wide scorers, one per (device, quantized), loaded on first use by one thread
    at a time: a worker's warm-up thread and its first job both ask for it, and two threads
    importing transformers at once fail with ImportError in one of them (seen on a fresh gpu
    worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, bool], TextScorer] = {}
        self._hits = self._misses = 0

    def __call__(self, *, device: str = "auto", quantized: bool = False) -> TextScorer:
        key = (device, bool(quantized))
        with self._lock:
            if key in self._loaded:
                self._hits += 1
            else:
                self._misses += 1
                self._loaded[key] = TextScorer(device=device, quantized=quantized)
            return self._loaded[key]

    def loaded(self) -> int:
        return len(self._loaded)

    def cache_info(self) -> ScorerCacheInfo:
        return ScorerCacheInfo(self._hits, self._misses, len(self._loaded))

    def cache_clear(self) -> None:
        with self._lock:
            self._loaded.clear()
            self._hits = self._misses = 0


#: ``get_text_scorer(device=..., quantized=...)``: the process-wide scorer for these settings.
get_text_scorer = _ScorerCache()
