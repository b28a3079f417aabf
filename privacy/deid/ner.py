"""The spaCy NER recognizer with Vigil's filters, and a place heuristic for cities it misses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from privacy.deid import types as T
from privacy.deid.filters import (
    NOT_PLACES,
    is_specific_date,
    keep_location,
    keep_person,
    leading_title_length,
)
from privacy.deid.lexicon import (
    AMBIGUOUS_NAME_WORDS,
    MONTHS,
    NOT_A_PERSON,
    PLACE_PREFIXES,
    STOP_WORDS,
    WEEKDAYS,
    fold,
    in_vocabulary,
    is_first_name,
)
from privacy.deid.recognizers import CAPWORD


class FilteredSpacyRecognizer(SpacyRecognizer):
    """spaCy's PERSON / LOCATION / DATE_TIME, minus what is not PHI (see :mod:`filters`).

    Filtering here, before presidio merges duplicates, matters: presidio drops a result contained
    in an equal-scored one of the same type, so a guess filtered out later would take a good
    detection from another recognizer with it.
    """

    def __init__(self, english_vocab: Iterable[str] = ()) -> None:
        self.english_vocab = frozenset(english_vocab)
        super().__init__(
            supported_entities=[T.PERSON, T.LOCATION, T.DATE_TIME], name="SpacyRecognizer"
        )

    def _leading_words_to_drop(self, span: str) -> int:
        """Characters of leading ordinary words in a PERSON span ("Call Sam" -> "Sam")."""
        cut = 0
        for match in re.finditer(r"\S+\s+", span):
            word = fold(match.group(0).strip()).strip(".,'\u2019")
            ordinary = word in STOP_WORDS or (
                in_vocabulary(word, self.english_vocab) and not is_first_name(word)
            )
            if not ordinary or match.end() >= len(span):
                break
            cut = match.end()
        return cut

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        kept: list[RecognizerResult] = []
        for result in super().analyze(text, entities, nlp_artifacts):
            span = text[result.start : result.end]
            if result.entity_type == T.DATE_TIME:
                if is_specific_date(span):
                    kept.append(result)
            elif result.entity_type == T.LOCATION:
                if keep_location(span):
                    kept.append(result)
            elif result.entity_type == T.PERSON:
                cut = leading_title_length(span) or self._leading_words_to_drop(span)
                if cut:
                    result.start += cut
                    span = text[result.start : result.end]
                if keep_person(span):
                    kept.append(result)
        return kept


_PLACE_CUE = re.compile(
    r"\b(?i:in|to|from|near|into|around|outside|across|through|visiting|visited|towards|toward)"
    rf"[ \t]+(?P<place>{CAPWORD}(?:[ \t]+{CAPWORD}){{0,2}})"
)


class PlaceRecognizer(LocalRecognizer):
    """A capitalised name after "in / to / from / near ..." that is not a person or a common word:
    a town the small NER model did not know ("Took the train to Manchester")."""

    SCORE = 0.65

    def __init__(self) -> None:
        self.recognizer_name: str = "VigilPlaceRecognizer"
        super().__init__(
            supported_entities=[T.LOCATION], supported_language="en", name=self.recognizer_name
        )

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if entities and T.LOCATION not in entities:
            return []
        results: list[RecognizerResult] = []
        for match in _PLACE_CUE.finditer(text):
            words = match.group("place").split()
            first = words[0]
            if first.isupper() and len(first) > 1:
                continue  # ALL CAPS text: too many ordinary words look like this
            keys = [fold(w).strip("'\u2019") for w in words]
            if any(
                k in STOP_WORDS
                or k in AMBIGUOUS_NAME_WORDS
                or k in MONTHS
                or k in WEEKDAYS
                or k in NOT_A_PERSON
                or k in NOT_PLACES
                for k in keys[:1]
            ):
                continue
            if is_first_name(first) and keys[0] not in PLACE_PREFIXES:
                continue  # "to Priya": a person, left to the name recognizer
            start, end = match.span("place")
            if not keep_location(text[start:end]):
                continue
            results.append(
                RecognizerResult(
                    entity_type=T.LOCATION,
                    start=start,
                    end=end,
                    score=self.SCORE,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.recognizer_name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results
