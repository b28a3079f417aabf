"""Mask person and place names before the text encoder sees a passage (names must not move scores).

A diary that names "Anna" or "Mohammed", "Leeds" or "Lagos" gives the frozen encoder a different
vector for the same sentence: swapping five first names and cities moved valence by up to 0.44
and P(at risk) by up to 0.39 (docs/text-scoring.md, "Names and places"). So the scorer hands the
encoder each passage with every person name replaced by :data:`PERSON_TOKEN` and every place name
by :data:`PLACE_TOKEN`: all names give the same input. Offsets, the crisis detector and VADER keep
the original text.

Detection is a lexicon lookup over capitalised words (microseconds a text, no NER model):

* **places**: the longest run of capitalised words (connectors such as "de", "upon", "of" may sit
  inside) that is in the committed gazetteer ``data/places.txt`` (countries, US states, UK
  counties, world cities of ~500k+, ...); all-caps entries ("UK", "NYC") match as written;
* **persons**: a capitalised given name from the de-identification lexicon
  (``privacy/deid/data/first_names.txt``, via :mod:`privacy.deid.lexicon`, which imports neither
  presidio nor Django) or ``data/given_names_extra.txt`` (names popular since 2000), unless it is
  an everyday word there (``is_common_word``: "Will", "May", "Hope", "Grace", "Monday", "God",
  ...) or in ``data/name_words.txt`` ("Song", "Numbers"), with any capitalised given or family
  names that follow ("Anna Kowalska"); and the capitalised word(s) after a title ("Dr Okafor",
  "Mrs. Kaur"). A one-word place that is also a given name ("Sofia", "Georgia") is a place after
  "in", "from", "moved to"... and a person otherwise.

Lower-case and ALL-CAPS names are left alone (too many everyday words: "will", "mark", "song"),
and so are names none of the lists know ("Chidubem"): see docs/text-scoring.md, "Known limits".
No Django here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from privacy.deid import lexicon as lex  # word lists only: no presidio, spaCy or Django

DATA_DIR = Path(__file__).resolve().parent / "data"

PERSON = "PERSON"
PLACE = "PLACE"
# Chosen by measurement (docs/text-scoring.md, "Names and places"): of the pairs tried, a fixed
# ordinary name and city keep the scores closest to their average over real names. GoEmotions'
# own "[NAME]" does not: the risk head learnt it as a non-risk cue (its GoEmotions background
# rows carry it) and it lowers P(at risk) by 0.08 on average.
PERSON_TOKEN = "Alex"  # noqa: S105 - a mask, not a secret
PLACE_TOKEN = "London"  # noqa: S105

# a word that starts with an upper-case (or caseless) letter, not inside another word
_CAP_WORD = re.compile(r"(?<![\w'\u2019\-])[^\W\d_a-z](?:[\w'\u2019\-]*[^\W_])?")
# the next word after a name or a place word: one gap of spaces, or ". " after an abbreviation
_NEXT_WORD = re.compile(r"(\.?)[ \t]{1,2}([^\W\d_](?:[\w'\u2019\-]*[^\W_])?)")
# lower-case words that may sit inside a place name ("Rio de Janeiro", "Isle of Wight")
_CONNECTORS = frozenset(
    {"de", "del", "da", "do", "dos", "das", "la", "el", "es", "of", "upon", "on", "and", "am"}
)
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "miss", "sir", "dame"})
# one-word places that are also given names but read as places whatever comes before them
_PLACE_FIRST = lex.split_words(
    """
    alberta alexandria argentina asuncion bradford burma chester cleveland columbus dallas denver
    france geneva houston israel kandy kent kenya maryland odessa orlando palma preston raleigh
    roma rosario samara sanaa tijuana trinidad valencia venice verona
    """
)
# the others ("Sofia", "Georgia", "Victoria", "Sydney", ...) are places only after one of these
# words ("in Sofia", "moved to Victoria", "the phone from Sydney"), persons otherwise ("Sofia
# called", "a call from Sofia", "went out with Georgia")
_PLACE_CUE = re.compile(
    r"(?i:\b(?:in|near|around|across|through|into|outside|via|towards?|of|from|(?:moved?|moving|"
    r"went|go|going|gone|back|flew|fly|flying|drove|drive|driving|trip|travel(?:l?ed|l?ing)?|"
    r"train|bus|flight|return|returned|returning|home|came|come|coming|live|lived|living|born|"
    r"road)[ \t]+to))[ \t]+$"
)
_PERSON_FROM = re.compile(
    r"(?i:\b(?:call|calls|called|text|texts|texted|message|messages|letter|letters|email|emails|"
    r"news|gift|card|visit|hug|help|love|note|present|heard|hear|hearing|word)[ \t]+from)[ \t]+$"
)
_CUE_REACH = 28  # characters looked at before the word


@dataclass(frozen=True)
class EntitySpan:
    """A masked name: ``text[start:end]`` (a possessive "'s" is left outside the span)."""

    start: int
    end: int
    kind: str  # PERSON or PLACE


@dataclass(frozen=True)
class _Gazetteer:
    names: frozenset[str]  # folded, words joined by one space
    prefixes: frozenset[str]  # folded word prefixes of multi-word names
    acronyms: frozenset[str]  # all-caps entries, matched as written
    max_words: int


def _data_lines(name: str) -> list[str]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return [s for s in (line.strip() for line in handle) if s and not s.startswith("#")]


def _key(words: list[str]) -> str:
    return " ".join(lex.fold(w) for w in words)


@cache
def _gazetteer() -> _Gazetteer:
    names: set[str] = set()
    prefixes: set[str] = set()
    acronyms: set[str] = set()
    longest = 1
    for entry in _data_lines("places.txt"):
        if entry.isupper():
            acronyms.add(entry)
            continue
        words = entry.replace(".", " ").split()
        longest = max(longest, len(words))
        names.add(_key(words))
        for n in range(1, len(words)):
            prefixes.add(_key(words[:n]))
    return _Gazetteer(frozenset(names), frozenset(prefixes), frozenset(acronyms), longest)


@cache
def _name_words() -> frozenset[str]:
    return frozenset(lex.fold(w) for w in _data_lines("name_words.txt"))


@cache
def _given_names() -> frozenset[str]:
    """The deid lexicon's given names and ``data/given_names_extra.txt`` (recent names)."""
    extra = frozenset(lex.fold(w) for w in _data_lines("given_names_extra.txt"))
    return lex.first_names() | extra


def _base(word: str) -> str:
    """The word without a possessive "'s"."""
    if len(word) > 3 and word[-2:] in ("'s", "\u2019s"):
        return word[:-2]
    return word


def _is_titlecase(word: str) -> bool:
    """First letter upper case and at least one lower-case letter ("Anna", "McKay", not "NAME")."""
    return word[0].isupper() and any(c.islower() for c in word)


def _is_given_name(word: str) -> bool:
    key = lex.fold(word)
    if "-" in key:  # "Jean-Luc", "Mary-Jane"
        parts = [p for p in key.split("-") if p]
        return bool(parts) and all(_is_given_name(p) for p in parts)
    return (
        key in _given_names()
        and not lex.is_common_word(key)
        and key not in _name_words()
        and key not in lex.NOT_A_PERSON
    )


def _is_name_part(word: str) -> bool:
    """A word that may follow a given name inside the same name (a family or second name)."""
    if not _is_titlecase(word):
        return False
    key = lex.fold(word)
    if key in lex.STOP_WORDS or key in lex.PLACE_OR_ORG_WORDS or lex.is_common_word(key):
        return False
    return _is_given_name(word) or lex.is_surname(word)


def _follow(text: str, pos: int) -> tuple[str, int, int, str] | None:
    """The word right after ``pos``: (word, start, end, gap dot) or None."""
    m = _NEXT_WORD.match(text, pos)
    if m is None:
        return None
    return m.group(2), m.start(2), m.end(2), m.group(1)


def _match_place(text: str, word: str, start: int, end: int) -> int | None:
    """End of the longest gazetteer name starting with ``word`` at ``start``, or None."""
    gaz = _gazetteer()
    base = _base(word)
    if base.isupper():
        return start + len(base) if base in gaz.acronyms else None
    words = [base]
    best: int | None = start + len(base) if _key(words) in gaz.names else None
    pos = end
    while base == word and len(words) < gaz.max_words and _key(words) in gaz.prefixes:
        nxt = _follow(text, pos)
        if nxt is None:
            break
        word, _, pos, dot = nxt
        if dot and lex.fold(words[-1]) not in ("st", "mt", "ft"):
            break
        base = _base(word)
        if not (_is_titlecase(base) or base in _CONNECTORS):
            break
        words.append(base)
        if _key(words) in gaz.names:
            best = pos - (len(word) - len(base))
    return best


def _place_at(text: str, word: str, start: int, end: int) -> int | None:
    """End of a place name at ``start``, or None (for a place that is also a given name, see
    :data:`_PLACE_FIRST` and :data:`_PLACE_CUE`)."""
    place_end = _match_place(text, word, start, end)
    base = _base(word)
    if place_end == start + len(base) and _is_given_name(base):
        if lex.fold(base) in _PLACE_FIRST:
            return place_end
        reach = max(0, start - _CUE_REACH)
        if not _PLACE_CUE.search(text, reach, start) or _PERSON_FROM.search(text, reach, start):
            return None
    return place_end


def _person_end(text: str, start: int, word: str) -> int:
    """End of a name that starts with ``word`` at ``start`` (given name + further name words).

    The run has no length limit and stops before a place name, so that masking is idempotent
    (the tokens themselves are a given name and a place).
    """
    base = _base(word)
    end = start + len(base)
    while base == word:
        nxt = _follow(text, start + len(word))
        if nxt is None or nxt[3]:
            break
        word, start, stop, _ = nxt
        base = _base(word)
        if not _is_name_part(base) or _place_at(text, word, start, stop) is not None:
            break
        end = start + len(base)
    return end


def find_entities(text: str) -> list[EntitySpan]:
    """Person and place names in ``text``, in order, not overlapping."""
    spans: list[EntitySpan] = []
    pos = 0
    for m in _CAP_WORD.finditer(text):
        start, end = m.span()
        if start < pos:
            continue
        word = m.group(0)
        base = _base(word)
        place_end = _place_at(text, word, start, end)
        if place_end is not None:
            spans.append(EntitySpan(start, place_end, PLACE))
            pos = place_end
            continue
        if not _is_titlecase(base):
            continue
        if _is_given_name(base):
            stop = _person_end(text, start, word)
            spans.append(EntitySpan(start, stop, PERSON))
            pos = stop
            continue
        if word.lower() in _TITLES:
            nxt = _follow(text, end)
            if nxt is None:
                continue
            name, name_start, name_end, _ = nxt
            key = lex.fold(_base(name))
            if (
                _is_titlecase(name)
                and key not in lex.STOP_WORDS
                and key not in lex.NOT_A_PERSON
                and _place_at(text, name, name_start, name_end) is None
            ):
                stop = _person_end(text, name_start, name)
                spans.append(EntitySpan(name_start, stop, PERSON))
                pos = stop
    return spans


def mask_spans(
    text: str,
    spans: list[EntitySpan],
    start: int = 0,
    end: int | None = None,
    *,
    person_token: str = PERSON_TOKEN,
    place_token: str = PLACE_TOKEN,
) -> str:
    """``text[start:end]`` with the ``spans`` that lie inside it replaced by their tokens."""
    stop = len(text) if end is None else end
    out: list[str] = []
    pos = start
    for s in spans:
        if s.start < pos or s.end > stop:
            continue
        out.append(text[pos : s.start])
        out.append(person_token if s.kind == PERSON else place_token)
        pos = s.end
    out.append(text[pos:stop])
    return "".join(out)


def mask_entities(
    text: str, *, person_token: str = PERSON_TOKEN, place_token: str = PLACE_TOKEN
) -> str:
    """``text`` with person names as ``person_token`` and place names as ``place_token``."""
    spans = find_entities(text)
    if not spans:
        return text
    return mask_spans(text, spans, person_token=person_token, place_token=place_token)
