"""Behaviour of ``deidentify``: placeholders, deny-lists, ages, overlaps and failing closed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from privacy.deid import WITHHELD_MARKER, DenyList, deidentify
from privacy.deid import engine as deid_engine_module
from privacy.deid.types import DeidResult

pytestmark = pytest.mark.usefixtures("deid_engine")


def _surfaces(text: str, result: DeidResult) -> dict[str, str]:
    return {text[s.start : s.end]: s.placeholder for s in result.spans}


def test_same_name_twice_gets_the_same_placeholder() -> None:
    text = "Priya Sharma called. Later Priya Sharma texted again."
    result = deidentify(text)
    assert result.text == "<PERSON_1> called. Later <PERSON_1> texted again."


def test_two_names_get_two_placeholders_and_a_part_of_a_name_follows_its_owner() -> None:
    text = "Kwame Mensah and Olena Shevchenko came over; Kwame stayed for dinner."
    result = deidentify(text)
    assert result.text == "<PERSON_1> and <PERSON_2> came over; <PERSON_1> stayed for dinner."


def test_placeholders_are_numbered_per_type_in_order() -> None:
    text = (
        "Call Sam on (415) 555-0132 or 020 7946 0321; Sam's email is sam.k@example.com, "
        "and (415) 555-0132 is the one that works."
    )
    result = deidentify(text)
    assert result.text == (
        "Call <PERSON_1> on <PHONE_NUMBER_1> or <PHONE_NUMBER_2>; <PERSON_1>'s email is "
        "<EMAIL_ADDRESS_1>, and <PHONE_NUMBER_1> is the one that works."
    )


def test_spans_point_into_the_original_text() -> None:
    text = "Dr. Okonkwo saw me on March 3rd at 221B Baker Street."
    result = deidentify(text)
    got = {(s.entity_type, text[s.start : s.end]) for s in result.spans}
    assert got == {
        ("PERSON", "Okonkwo"),
        ("DATE_TIME", "March 3rd"),
        ("ADDRESS", "221B Baker Street"),
    }
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)
        assert 0.0 < span.score <= 1.0


@pytest.mark.parametrize(
    "text, phi",
    [
        ("I live at 1600 Pennsylvania Ave NW now.", "1600 Pennsylvania Ave NW"),
        ("Moved to Flat 3, 45 Queen's Road last month.", "Flat 3, 45 Queen's Road"),
        ("We stayed at 12 rue de la Paix.", "12 rue de la Paix"),
        ("Forms go to P.O. Box 4521.", "P.O. Box 4521"),
        ("Our place is 350 Fifth Avenue, Apt 4B, sadly.", "350 Fifth Avenue, Apt 4B"),
        ("Clinic letter says MRN 00123456.", "00123456"),
        ("MRN: A1234567 on the band.", "A1234567"),
        ("The bank wants account no. 12-3456-789 again.", "12-3456-789"),
        ("Paid from acct #998877.", "998877"),
        ("He follows me as @sunny_days88 now.", "@sunny_days88"),
        (
            "See https://example.org/forum/thread?id=4 for it.",
            "https://example.org/forum/thread?id=4",
        ),
        ("Found it on www.mindfulnessforall.org today.", "www.mindfulnessforall.org"),
        ("My mobile is +44 7700 900987.", "+44 7700 900987"),
        ("Ring +49 30 901820 tomorrow.", "+49 30 901820"),
        ("Dad is on +91 98765 43210.", "+91 98765 43210"),
        ("Number: 415.555.0143.", "415.555.0143"),
        ("Card 4111 1111 1111 1111 was stolen.", "4111 1111 1111 1111"),
        ("My SSN is 536-22-8174.", "536-22-8174"),
    ],
)
def test_diary_recognizers(text: str, phi: str) -> None:
    result = deidentify(text)
    assert phi not in result.text
    assert any(text[s.start : s.end] == phi for s in result.spans), result.spans


@pytest.mark.parametrize(
    "text, age",
    [
        ("My grandmother is 93 years old.", "93"),
        ("Grandad, aged 95, asked.", "95"),
        ("She reached age 101 in May.", "101"),
        ("A 97-year-old neighbour.", "97"),
    ],
)
def test_ages_over_89_are_redacted(text: str, age: str) -> None:
    result = deidentify(text)
    assert age not in result.text
    assert "<AGE_1>" in result.text


@pytest.mark.parametrize(
    "text",
    [
        "I'm 34 years old and tired.",
        "My dad is 67 and still works.",
        "Aged 52 and learning to ask for help.",
        "Mum turned 89 last week.",
        "A 45-year-old man sat next to me.",
        "I have felt low for three weeks.",
    ],
)
def test_ages_up_to_89_and_durations_survive(text: str) -> None:
    assert deidentify(text).text == text


def test_overlapping_detections_leave_no_partial_leftovers() -> None:
    # presidio's URL pattern also fires on "gmail.com" and "john.do" inside the address.
    text = "Write to john.doe@gmail.com today."
    result = deidentify(text)
    assert result.text == "Write to <EMAIL_ADDRESS_1> today."
    assert len(result.spans) == 1


def test_deny_list_matches_lower_case_and_all_caps() -> None:
    deny = DenyList.build(names=["Zorbek Quillfeather", "Tamsin Vellacott"], locations=["Oakhaven"])
    text = (
        "zorbek quillfeather came by. ZORBEK was loud. I miss tamsin. "
        "OAKHAVEN is grey and oakhaven is cold. Quillfeather left."
    )
    result = deidentify(text, deny_list=deny)
    lowered = result.text.lower()
    for word in ("zorbek", "quillfeather", "tamsin", "oakhaven"):
        assert word not in lowered, result.text
    assert result.text.startswith("<PERSON_1> came by. <PERSON_1> was loud. I miss <PERSON_2>.")
    assert "<LOCATION_1> is grey and <LOCATION_1> is cold" in result.text


def test_deny_list_name_parts_that_are_words_match_only_capitalised() -> None:
    deny = DenyList.build(names=["Will Hope"])
    text = "Will Hope texted. I will hope for the best. WILL said so."
    result = deidentify(text, deny_list=deny)
    assert "I will hope for the best." in result.text
    assert "Will" not in result.text and "WILL" not in result.text


def test_the_engine_is_built_once_and_reused() -> None:
    assert deid_engine_module.get_analyzer() is deid_engine_module.get_analyzer()


def test_empty_and_blank_text() -> None:
    assert deidentify("").text == ""
    assert deidentify("   ").text == "   "


class _Exploding:
    def analyze(self, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom while reading {kwargs.get('text')!r}")


class _Garbage:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def analyze(self, **kwargs: Any) -> Any:
        return self.answer


class _Result:
    def __init__(self, entity_type: Any, start: Any, end: Any, score: Any) -> None:
        self.entity_type, self.start, self.end, self.score = entity_type, start, end, score
        self.recognition_metadata: dict[str, Any] = {}


SECRET = "Priya Sharma lives at 221B Baker Street, call 07700 900461"


def test_fails_closed_when_the_analyzer_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(deid_engine_module, "get_analyzer", lambda: _Exploding())
    with caplog.at_level(logging.DEBUG):
        result = deidentify(SECRET, record_id="entry-42")
    assert result.withheld is True
    assert result.text == WITHHELD_MARKER
    assert result.spans == ()
    assert result.error == "RuntimeError"
    assert "Priya" not in result.text and "Baker" not in result.text
    assert "entry-42" in caplog.text and "RuntimeError" in caplog.text
    for fragment in ("Priya", "Sharma", "Baker", "07700", "boom"):
        assert fragment not in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "PERSON 0 5",
        [_Result("PERSON", 0, 10_000, 0.9)],
        [_Result("PERSON", -1, 4, 0.9)],
        [_Result(None, 0, 4, 0.9)],
        [_Result("PERSON", 0, 4, "high")],
    ],
)
def test_fails_closed_on_an_unusable_answer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    monkeypatch.setattr(deid_engine_module, "get_analyzer", lambda: _Garbage(answer))
    with caplog.at_level(logging.DEBUG):
        result = deidentify(SECRET)
    assert result.withheld and result.text == WITHHELD_MARKER
    assert "Priya" not in caplog.text


def test_fails_closed_when_the_engine_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model() -> Any:
        raise deid_engine_module.DeidUnavailable("model missing")

    monkeypatch.setattr(deid_engine_module, "get_analyzer", no_model)
    result = deidentify(SECRET)
    assert result.withheld and result.error == "DeidUnavailable"


def test_non_string_input_is_withheld() -> None:
    result = deidentify(12345)  # type: ignore[arg-type]
    assert result.withheld
