"""Passage splitting: exact offsets, sentence boundaries, and every passage fits the encoder."""

from __future__ import annotations

import itertools

import pytest

from screening.ml.text.passages import split_passages, split_sentences
from screening.ml.text.scorer import TextScorer


def test_sentences_keep_offsets() -> None:
    text = "I slept badly. Then the rain stopped!  Was it worth it? Yes\nNew line"
    spans = split_sentences(text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == [
        "I slept badly.",
        "Then the rain stopped!",
        "Was it worth it?",
        "Yes",
        "New line",
    ]


def test_short_text_is_one_passage(scorer: TextScorer) -> None:
    text = "  A quiet day at home. I read a book.  "
    ps = split_passages(text, scorer.encoder.tokenizer)
    assert len(ps) == 1
    assert text[ps[0].start : ps[0].end] == "A quiet day at home. I read a book."


def test_long_text_is_split_on_sentences_and_fits(scorer: TextScorer) -> None:
    tok = scorer.encoder.tokenizer
    sentence = "Today I walked to the market and bought some apples and bread for the week. "
    text = sentence * 60  # about 900 wordpieces
    ps = split_passages(text, tok, max_tokens=256)
    assert len(ps) >= 4
    for p in ps:
        piece = text[p.start : p.end]
        assert len(tok(piece)["input_ids"]) <= 256  # with [CLS] and [SEP]
        assert piece.startswith("Today") and piece.endswith("week.")
    # passages cover the text in order without overlap
    assert all(a.end <= b.start for a, b in itertools.pairwise(ps))


def test_paragraphs_are_not_merged(scorer: TextScorer) -> None:
    text = "First paragraph here.\n\nSecond one there."
    ps = split_passages(text, scorer.encoder.tokenizer)
    assert [text[p.start : p.end] for p in ps] == ["First paragraph here.", "Second one there."]


def test_one_huge_sentence_is_cut_on_wordpieces(scorer: TextScorer) -> None:
    tok = scorer.encoder.tokenizer
    text = " ".join(["endless"] * 700)
    ps = split_passages(text, tok, max_tokens=128)
    assert len(ps) >= 6
    for p in ps:
        assert len(tok(text[p.start : p.end])["input_ids"]) <= 128


def test_tiny_budget_rejected(scorer: TextScorer) -> None:
    with pytest.raises(ValueError):
        split_passages("hello", scorer.encoder.tokenizer, max_tokens=4)


def test_fast_path_matches_the_splitter(scorer: TextScorer) -> None:
    texts = [
        "  One line, two sentences. Short!  ",
        "Line one.\nLine two.",
        "",
        "word " * 400,
        "Plain.",
    ]
    fast = scorer._split_all(texts)
    slow = [scorer.passages(t) for t in texts]
    assert [[(p.start, p.end) for p in ps] for ps in fast] == [
        [(p.start, p.end) for p in ps] for ps in slow
    ]
