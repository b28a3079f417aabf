"""The pure crisis-resource table: built-in lines by region, clinic overrides, fallbacks."""

from __future__ import annotations

import pytest

from screening.crisis import BUILT_IN, FALLBACK, MESSAGE, crisis_resources_for

CLINIC = {"name": "Clinic line", "phone": "555 0100"}


def test_every_built_in_region_answers_around_the_clock_with_an_emergency_number():
    for region, entry in BUILT_IN.items():
        assert entry["emergency_number"], region
        assert entry["resources"], region
        for resource in entry["resources"]:
            assert resource["name"] and resource["phone"]
            assert resource["hours"] == "24/7"


@pytest.mark.parametrize(
    ("locale", "emergency", "phones"),
    [
        ("en-US", "911", ["988"]),
        ("en-GB", "999", ["116 123", "111"]),
        ("en_IE", "112", ["116 123"]),
        ("fr-CA", "911", ["988"]),
        ("zh-Hant-TW", "112", []),
        ("en", "112", []),
        ("", "112", []),
    ],
)
def test_built_in_resources_by_region(locale, emergency, phones):
    result = crisis_resources_for(locale=locale)
    assert result["locale"] == locale
    assert result["emergency_number"] == emergency
    assert [r["phone"] for r in result["resources"]] == phones
    assert result["message"] == MESSAGE


def test_the_fallback_table_is_not_mutated_by_overrides():
    before = [dict(r) for r in BUILT_IN["US"]["resources"]]
    crisis_resources_for(locale="en-US", clinic_overrides={"en-US": [CLINIC]})
    crisis_resources_for(locale="xx-ZZ", clinic_overrides={"xx-ZZ": [CLINIC]})
    assert BUILT_IN["US"]["resources"] == before
    assert FALLBACK["resources"] == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"en-US": {"resources": [CLINIC]}},
        {"en-US": [CLINIC]},
        {"US": {"resources": [CLINIC]}},
        {"US": [CLINIC]},
    ],
)
def test_clinic_resources_come_first(overrides):
    result = crisis_resources_for(locale="en-US", clinic_overrides=overrides)
    assert result["resources"][0] == CLINIC
    assert result["resources"][1]["phone"] == "988"
    assert result["emergency_number"] == "911"


def test_the_locale_entry_wins_over_the_region_entry():
    result = crisis_resources_for(
        locale="en-US",
        clinic_overrides={"en-US": [CLINIC], "US": [{"name": "Region line", "phone": "1"}]},
    )
    assert result["resources"][0]["name"] == "Clinic line"
    assert "Region line" not in [r["name"] for r in result["resources"]]


def test_a_clinic_can_set_the_emergency_number_for_an_unknown_region():
    result = crisis_resources_for(
        locale="xx-ZZ",
        clinic_overrides={"xx-ZZ": {"emergency_number": "110", "resources": [CLINIC]}},
    )
    assert result["emergency_number"] == "110"
    assert result["resources"] == [CLINIC]


@pytest.mark.parametrize(
    "overrides",
    [
        None,
        {},
        [],
        "not a mapping",
        {"en-US": None},
        {"en-US": "call us"},
        {"en-US": {"resources": "call us"}},
        {"en-US": {"resources": [{"phone": "no name"}], "emergency_number": 911}},
        {"en-US": [None, 3, "x"]},
    ],
)
def test_malformed_clinic_entries_never_break_the_answer(overrides):
    result = crisis_resources_for(locale="en-US", clinic_overrides=overrides)  # type: ignore[arg-type]
    assert result["emergency_number"] == "911"
    assert [r["phone"] for r in result["resources"]] == ["988"]
