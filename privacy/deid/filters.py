"""What counts as PHI among the NER model's guesses (pure functions, no presidio, no Django).

* DATE_TIME: only calendar dates more precise than a year ("March 3rd", "3/4/2025",
  "March 2019"); a year, a month or a weekday alone, times of day and durations are not PHI
  under HIPAA Safe Harbor, and "45 years old" is an age, kept when 89 or under.
* LOCATION: places smaller than a state; countries, US states and continents are not PHI.
* PERSON: not religious figures, relations ("Grandad"), titles, or everyday words that are also
  given names when they stand alone ("Will", "May", "Grace").
"""

from __future__ import annotations

import re

from privacy.deid.lexicon import (
    AMBIGUOUS_NAME_WORDS,
    MONTHS,
    NOT_A_PERSON,
    STOP_WORDS,
    WEEKDAYS,
    fold,
    split_words,
)
from privacy.deid.recognizers import DATE_RULES

_SPECIFIC_DATE = [rule.regex for rule in DATE_RULES]
_MONTH_YEAR_NUMERIC = re.compile(r"\b(?:0?[1-9]|1[0-2])[/.\-](?:19|20)\d\d\b")


def is_specific_date(text: str) -> bool:
    """A calendar date more precise than a year, a month or a weekday (those are not PHI)."""
    return any(regex.search(text) for regex in _SPECIFIC_DATE) or bool(
        _MONTH_YEAR_NUMERIC.search(text)
    )


_COUNTRIES_AND_STATES = """
afghanistan albania algeria argentina armenia australia austria azerbaijan bahrain bangladesh
belarus belgium bolivia bosnia brazil bulgaria cambodia cameroon canada chile china colombia
congo croatia cuba cyprus czechia denmark ecuador egypt england eritrea estonia ethiopia
finland france georgia germany ghana greece guatemala haiti honduras hungary iceland india
indonesia iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya korea kosovo
kuwait laos latvia lebanon libya lithuania luxembourg madagascar malawi malaysia mali malta
mexico moldova mongolia montenegro morocco mozambique myanmar namibia nepal netherlands
holland nicaragua niger nigeria norway oman pakistan palestine panama paraguay peru
philippines poland portugal qatar romania russia rwanda scotland senegal serbia singapore
slovakia slovenia somalia spain sudan sweden switzerland syria taiwan tanzania thailand
tunisia turkey uganda ukraine uruguay uzbekistan venezuela vietnam wales yemen zambia
zimbabwe britain uk usa us america europe africa asia antarctica oceania caribbean
scandinavia balkans alabama alaska arizona arkansas california colorado connecticut delaware
florida hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland
massachusetts michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma
oregon pennsylvania tennessee texas utah vermont virginia wisconsin wyoming earth heaven hell
"""
NOT_CITIES = frozenset(fold(w) for w in _COUNTRIES_AND_STATES.split()) | frozenset(
    {
        "united states",
        "united kingdom",
        "great britain",
        "south africa",
        "south korea",
        "north korea",
        "new zealand",
        "saudi arabia",
        "sri lanka",
        "costa rica",
        "el salvador",
        "sierra leone",
        "czech republic",
        "new jersey",
        "new mexico",
        "new hampshire",
        "new york state",
        "north carolina",
        "south carolina",
        "north dakota",
        "south dakota",
        "west virginia",
        "rhode island",
        "middle east",
        "northern ireland",
        "united arab emirates",
        "ivory coast",
        "dominican republic",
        "the west",
        "the north",
        "the south",
    }
)

#: Languages, nationalities, religions, festivals: capitalised, never a place or a person here.
NOT_PLACES = frozenset(
    split_words(
        """
        english french spanish german italian polish arabic hindi urdu chinese mandarin
        cantonese japanese korean russian ukrainian portuguese yoruba igbo hausa twi swahili
        tamil punjabi bengali gujarati turkish farsi persian dutch greek hebrew catholic
        muslim christian jewish hindu sikh buddhist british american african asian european
        latino latina black white christmas easter ramadan eid diwali hanukkah thanksgiving
        halloween lent advent passover valentine's valentines new year's mass church mosque
        temple synagogue therapy recovery group work school college university uni hospital
        heaven hell bed town
        """
    )
)

TITLE_WORDS = frozenset(
    split_words(
        """
        dr mr mrs ms mx miss prof sir dame rev fr sr sra srta mme mlle herr frau doctor
        nurse professor pastor imam rabbi sheikh chief officer judge captain capt coach
        auntie aunty aunt uncle grandma grandpa granny gran nana nanna grandad granddad
        great-aunt great-uncle great-grandma great-grandpa abuela abuelo cousin
        """
    )
)


def leading_title_length(span: str) -> int:
    """Characters to drop from the start of a PERSON span that begins with a title word."""
    match = re.match(r"([^\W\d_][\w\-]*)\.?\s+", span)
    if match and fold(match.group(1)) in TITLE_WORDS and match.end() < len(span):
        return match.end()
    return 0


def keep_location(span: str) -> bool:
    key = fold(span).strip(" .,'\u2019")
    key = key.removeprefix("the ")
    if not span[:1].isupper():
        return False
    if key in NOT_CITIES or key in NOT_PLACES or key in STOP_WORDS or key in NOT_A_PERSON:
        return False
    return not (key in MONTHS or key in WEEKDAYS)


def keep_person(span: str) -> bool:
    if not span[:1].isupper() or any(c.isdigit() for c in span):
        return False
    words = [fold(w).strip(".,'\u2019") for w in span.split()]
    words = [w.removesuffix("'s") for w in words if w]
    if not words or all(w in NOT_A_PERSON or w in TITLE_WORDS for w in words):
        return False
    if len(words) == 1 and (words[0] in AMBIGUOUS_NAME_WORDS or words[0] in NOT_PLACES):
        return False
    return not all(w in NOT_PLACES for w in words)
