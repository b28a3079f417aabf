"""The name masker the text scorer runs before encoding (screening/ml/text/entities.py)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.ml.text import entities as E
from screening.ml.text.entities import (
    PERSON,
    PERSON_TOKEN,
    PLACE,
    PLACE_TOKEN,
    find_entities,
    mask_entities,
    mask_spans,
)


def _found(text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.kind) for s in find_entities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anna and I walked around Leeds today.", [("Anna", PERSON), ("Leeds", PLACE)]),
        (
            "I argued with Mohammed on the phone from Lagos.",
            [("Mohammed", PERSON), ("Lagos", PLACE)],
        ),
        ("Wei visited me in Shanghai.", [("Wei", PERSON), ("Shanghai", PLACE)]),
        (
            "Olga moved to Kraków, then to Krakow again.",
            [("Olga", PERSON), ("Kraków", PLACE), ("Krakow", PLACE)],
        ),
        ("Priya Sharma called.", [("Priya Sharma", PERSON)]),
        ("Anna Kowalska and Mary-Jane came.", [("Anna Kowalska", PERSON), ("Mary-Jane", PERSON)]),
        ("I saw Dr. Okafor and Mrs Kaur.", [("Okafor", PERSON), ("Kaur", PERSON)]),
        (
            "We flew from Rio de Janeiro to New York City.",
            [("Rio de Janeiro", PLACE), ("New York City", PLACE)],
        ),
        (
            "Then St. Louis and Newcastle upon Tyne.",
            [("St. Louis", PLACE), ("Newcastle upon Tyne", PLACE)],
        ),
        ("I moved to the UK from Nigeria.", [("UK", PLACE), ("Nigeria", PLACE)]),
        ("Georgia Smith went to Georgia.", [("Georgia Smith", PERSON), ("Georgia", PLACE)]),
        ("A call from Sofia: she moved to Sofia.", [("Sofia", PERSON), ("Sofia", PLACE)]),
        (
            "Went out with Georgia, then we drove back to Georgia.",
            [("Georgia", PERSON), ("Georgia", PLACE)],
        ),
        ("Liam and Aiden texted.", [("Liam", PERSON), ("Aiden", PERSON)]),
    ],
)
def test_names_and_places_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


def test_a_possessive_stays_outside_the_mask() -> None:
    text = "Anna's cat hates London's rain."
    assert _found(text) == [("Anna", PERSON), ("London", PLACE)]
    assert mask_entities(text) == f"{PERSON_TOKEN}'s cat hates {PLACE_TOKEN}'s rain."


@pytest.mark.parametrize(
    "text",
    [
        "I hope May will be better.",
        "Will I ever feel good again? God knows.",
        "Monday was hard. Hope is all I have left.",
        "Grace and Faith are what keep me going, thank God.",
        "Song of the day. Numbers are down. Nice weather.",
        "Reading helps. Turkey for dinner. Christmas is coming.",
        "The sun was out. Sunday lunch at Nana's, then Mum drove me home.",
        "I LOVE ANNA AND LEEDS.",  # all caps: too many everyday words look like this
        "mary called me from leeds.",  # lower case: left alone (see the module docstring)
        "Chidubem came round.",  # a name none of the lists knows
        "",
    ],
)
def test_ordinary_capitalised_words_are_not_masked(text: str) -> None:
    assert find_entities(text) == []
    assert mask_entities(text) == text


def test_sentence_initial_names_are_masked() -> None:
    text = "It rained. Anna laughed anyway. Lagos is far."
    assert mask_entities(text) == f"It rained. {PERSON_TOKEN} laughed anyway. {PLACE_TOKEN} is far."


def test_spans_are_offsets_into_the_original_text() -> None:
    text = "  Yesterday Anna Kowalska, my friend from Leeds, called;\n\nWei texted from São Paulo."
    spans = find_entities(text)
    assert [text[s.start : s.end] for s in spans] == ["Anna Kowalska", "Leeds", "Wei", "São Paulo"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_mask_spans_masks_a_slice_like_the_slice_alone() -> None:
    text = "Anna and I walked around Leeds. Then Wei called from Shanghai."
    spans = find_entities(text)
    cut = text.index("Then")
    assert mask_spans(text, spans, 0, cut) == mask_entities(text[:cut])
    assert mask_spans(text, spans, cut, len(text)) == mask_entities(text[cut:])
    # a span that crosses the slice's edge is left as it is
    inside = text.index("Leeds") + 2
    assert mask_spans(text, spans, 0, inside) == f"{PERSON_TOKEN} and I walked around Le"


def test_tokens_can_be_chosen() -> None:
    text = "Anna and I walked around Leeds."
    assert mask_entities(text, person_token="P", place_token="the city") == (
        "P and I walked around the city."
    )


WORDS = [
    "Anna", "Leeds", "I", "May", "Will", "Hope", "God", "Monday", "New", "York", "City", "de",
    "Rio", "Janeiro", "Dr.", "Okafor", "Kowalska", "'s", "and", "the", "walked", "to", "UK",
    "St.", "Louis", "Song", "[NAME]", "Alex", "London", "Mary-Jane", "Kraków", ",", ".", "\n",
    "Sofia", "Georgia", "Smith", "in", "Victoria", "Poland",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14), st.sampled_from([" ", "", "  "]))
def test_masking_is_idempotent_and_keeps_the_rest(words: list[str], sep: str) -> None:
    text = sep.join(words)
    once = mask_entities(text)
    assert mask_entities(once) == once
    # outside the spans, the text is untouched
    spans = find_entities(text)
    rebuilt = mask_spans(text, spans, person_token="\0", place_token="\0")
    kept = rebuilt.split("\0")
    assert len(kept) == len(spans) + 1
    pos = 0
    for part, span in zip(kept, [*spans, None], strict=True):
        assert text.startswith(part, pos)
        pos += len(part)
        if span is not None:
            assert span.start == pos
            pos = span.end


def test_every_gazetteer_entry_is_found() -> None:
    missed = []
    for entry in E._data_lines("places.txt"):
        text = f"Last year I lived in {entry} for a while."
        start = text.index(entry)
        spans = [(s.start, s.end, s.kind) for s in find_entities(text)]
        if (start, start + len(entry), PLACE) not in spans:
            missed.append(entry)
    assert missed == []


def test_the_data_files_hold_no_duplicates() -> None:
    for name in ("places.txt", "name_words.txt", "given_names_extra.txt"):
        lines = E._data_lines(name)
        assert len(lines) == len(set(lines)), name


def test_masker_imports_neither_django_nor_presidio() -> None:
    code = (
        "import sys; import screening.ml.text.entities as e; e.mask_entities('Anna in Leeds'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'presidio_analyzer', 'spacy', 'rest_framework')]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
