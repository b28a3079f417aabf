"""Public value types of the de-identification package (no Django, no presidio)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Entity types this package reports. Presidio's own names are kept where they exist.
PERSON = "PERSON"
LOCATION = "LOCATION"
ADDRESS = "ADDRESS"
DATE_TIME = "DATE_TIME"
AGE = "AGE"
PHONE_NUMBER = "PHONE_NUMBER"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
URL = "URL"
SOCIAL_HANDLE = "SOCIAL_HANDLE"
MEDICAL_RECORD_NUMBER = "MEDICAL_RECORD_NUMBER"
ACCOUNT_NUMBER = "ACCOUNT_NUMBER"
ID_NUMBER = "ID_NUMBER"
CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"
IP_ADDRESS = "IP_ADDRESS"
IBAN_CODE = "IBAN_CODE"
UK_NINO = "UK_NINO"
CA_SIN = "CA_SIN"
UK_DRIVING_LICENCE = "UK_DRIVING_LICENCE"

ENTITY_TYPES: tuple[str, ...] = (
    PERSON,
    LOCATION,
    ADDRESS,
    DATE_TIME,
    AGE,
    PHONE_NUMBER,
    EMAIL_ADDRESS,
    URL,
    SOCIAL_HANDLE,
    MEDICAL_RECORD_NUMBER,
    ACCOUNT_NUMBER,
    ID_NUMBER,
    CREDIT_CARD,
    US_SSN,
    IP_ADDRESS,
    IBAN_CODE,
    UK_NINO,
    CA_SIN,
    UK_DRIVING_LICENCE,
)

#: What a caller gets instead of the text when de-identification could not run.
WITHHELD_MARKER = "[text withheld: de-identification unavailable]"


@dataclass(frozen=True, slots=True)
class DeidSpan:
    """One redacted stretch of the *original* text (offsets into the input, end exclusive)."""

    entity_type: str
    start: int
    end: int
    score: float
    placeholder: str

    def as_dict(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "placeholder": self.placeholder,
        }


@dataclass(frozen=True, slots=True)
class DeidResult:
    """The outcome of :func:`privacy.deid.deidentify`.

    ``text`` is the redacted text, or :data:`WITHHELD_MARKER` when ``withheld`` is true (the
    analyzer failed: the original text is never returned in that case, and ``spans`` is empty).
    """

    text: str
    spans: tuple[DeidSpan, ...] = ()
    withheld: bool = False
    #: Class name of the exception that made us withhold the text (never its message).
    error: str | None = None

    @property
    def entity_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for span in self.spans:
            counts[span.entity_type] = counts.get(span.entity_type, 0) + 1
        return counts


_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class DenyTerm:
    term: str
    entity_type: str


@dataclass(frozen=True)
class DenyList:
    """Terms the clinic knows identify one patient (their name, their contact's, their city).

    Terms are matched case-insensitively on word boundaries (so "ALICE", "alice" and "Alice" all
    match). A single-word *part* of a name that is also an ordinary English word ("Will", "Hope",
    "Rose") is matched only when written with a capital letter (Title case or ALL CAPS), so
    that "I will try" survives for a patient called Will; full multi-word names always match.
    """

    terms: tuple[DenyTerm, ...] = ()
    #: Lower-cased single words that must be capitalised to match (see class docstring).
    capitalised_only: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def build(
        cls,
        *,
        names: Iterable[str | None] = (),
        locations: Iterable[str | None] = (),
        extra: Iterable[tuple[str, str]] = (),
    ) -> DenyList:
        """Build from full names (each also contributes its parts), places and typed extras.

        ``extra`` holds ``(term, entity_type)`` pairs, e.g. ``("Rosewood Lodge", "LOCATION")``.
        """
        from privacy.deid.lexicon import is_common_word  # local: keeps this module light

        seen: dict[str, DenyTerm] = {}
        capitalised_only: set[str] = set()

        def add(term: str, entity_type: str, *, part: bool = False) -> None:
            term = _SPACES.sub(" ", term).strip(" \t\r\n.,;:!?\"'()[]")
            key = term.casefold()
            if len(key) < 2 or key in seen:
                return
            if part and is_common_word(key):
                capitalised_only.add(key)
            seen[key] = DenyTerm(term=term, entity_type=entity_type)

        for name in names:
            if not name or not name.strip():
                continue
            add(name, PERSON)
            parts = [p for p in re.split(r"[\s,]+", name) if p]
            if len(parts) > 1:
                for part in parts:
                    if len(part.strip(".")) >= 2:
                        add(part, PERSON, part=True)
                if all(is_common_word(p) for p in parts):
                    # "Will Hope": even the full name must be capitalised ("I will hope").
                    capitalised_only.add(_SPACES.sub(" ", name).strip().casefold())
        for place in locations:
            if place and place.strip():
                add(place, LOCATION)
        for term, entity_type in extra:
            if term and term.strip():
                add(term, entity_type)
        ordered = sorted(seen.values(), key=lambda t: -len(t.term))
        return cls(terms=tuple(ordered), capitalised_only=frozenset(capitalised_only))

    def merged(self, other: DenyList | None) -> DenyList:
        if not other:
            return self
        seen = {t.term.casefold(): t for t in self.terms}
        for term in other.terms:
            seen.setdefault(term.term.casefold(), term)
        ordered = sorted(seen.values(), key=lambda t: -len(t.term))
        return DenyList(
            terms=tuple(ordered), capitalised_only=self.capitalised_only | other.capitalised_only
        )
