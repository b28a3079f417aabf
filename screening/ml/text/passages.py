"""Split long texts into passages that fit the encoder, on sentence boundaries, with char offsets.

A passage never crosses a paragraph break (a blank line, or a single newline) and packs whole
sentences up to ``max_tokens`` wordpieces (the [CLS]/[SEP] pair included). A sentence longer than
that is cut on wordpiece boundaries using the tokenizer's offset mapping, so every passage fits.
Offsets are into the original text, so ``text[p.start:p.end]`` is exactly the passage.
No Django here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# End of a sentence: . ! ? (possibly repeated, possibly followed by closing quotes/brackets) then
# whitespace; or a line break.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")
_PARAGRAPH = re.compile(r"\n\s*\n|\r\n|\n")


@dataclass(frozen=True)
class Passage:
    start: int
    end: int
    n_tokens: int  # wordpieces without special tokens


def _spans(text: str, pattern: re.Pattern[str], base: int = 0) -> list[tuple[int, int]]:
    """Pieces of ``text`` between matches of ``pattern`` (match kept with the left piece)."""
    pieces: list[tuple[int, int]] = []
    pos = 0
    for m in pattern.finditer(text):
        end = m.end()
        if end > pos:
            pieces.append((base + pos, base + end))
        pos = end
    if pos < len(text):
        pieces.append((base + pos, base + len(text)))
    return pieces


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) in ``text``, whitespace trimmed, empty ones dropped."""
    out = []
    for s, e in _spans(text, _SENTENCE_END):
        s, e = _strip(text, s, e)
        if e > s:
            out.append((s, e))
    return out


def split_passages(text: str, tokenizer: Any, *, max_tokens: int = 256) -> list[Passage]:
    """Passages of ``text`` that fit in ``max_tokens`` wordpieces (special tokens included)."""
    budget = max_tokens - 2
    if budget < 8:
        raise ValueError("max_tokens too small")
    passages: list[Passage] = []
    for p_start, p_end in _spans(text, _PARAGRAPH):
        p_start, p_end = _strip(text, p_start, p_end)
        if p_end <= p_start:
            continue
        sentences = [(p_start + s, p_start + e) for s, e in split_sentences(text[p_start:p_end])]
        if not sentences:
            continue
        counts = tokenizer(
            [text[s:e] for s, e in sentences],
            add_special_tokens=False,
            return_offsets_mapping=True,
        )
        cur_start: int | None = None
        cur_end = 0
        cur_tokens = 0
        for (s, e), ids, offsets in zip(
            sentences, counts["input_ids"], counts["offset_mapping"], strict=True
        ):
            n = len(ids)
            if n > budget:
                # flush what we have, then cut the long sentence on wordpiece boundaries
                if cur_start is not None:
                    passages.append(Passage(cur_start, cur_end, cur_tokens))
                    cur_start, cur_tokens = None, 0
                for k in range(0, n, budget):
                    chunk = offsets[k : k + budget]
                    cs, ce = s + chunk[0][0], s + chunk[-1][1]
                    passages.append(Passage(cs, ce, len(chunk)))
                continue
            if cur_start is not None and cur_tokens + n > budget:
                passages.append(Passage(cur_start, cur_end, cur_tokens))
                cur_start, cur_tokens = None, 0
            if cur_start is None:
                cur_start = s
            cur_end = e
            cur_tokens += n
        if cur_start is not None:
            passages.append(Passage(cur_start, cur_end, cur_tokens))
    return passages
