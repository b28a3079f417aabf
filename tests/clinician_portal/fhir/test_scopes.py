"""SMART scope parsing and narrowing (pure)."""

from __future__ import annotations

from clinician_portal.fhir.scopes import scope_parse, scopes_allow, scopes_narrow, scopes_parse


def test_parse_v1_and_v2_forms() -> None:
    assert scope_parse("user/Observation.rs") is not None
    v1 = scopes_parse("user/Observation.read")
    assert scopes_allow(v1, "Observation", "read") and scopes_allow(v1, "Observation", "search")
    read_only = scopes_parse("user/Flag.r")
    assert scopes_allow(read_only, "Flag", "read")
    assert not scopes_allow(read_only, "Flag", "search")
    assert not scopes_allow(read_only, "Observation", "read")
    assert scopes_allow(scopes_parse("system/*.rs"), "AuditEvent", "search")
    assert scopes_parse("openid fhirUser launch junk/x.rs user/observation.rs") == ()


def test_narrow_keeps_only_covered_scopes() -> None:
    allowed = "system/Observation.rs system/Patient.r"
    assert scopes_narrow("", allowed) == allowed
    assert scopes_narrow("system/Observation.rs", allowed) == "system/Observation.rs"
    assert scopes_narrow("system/Patient.rs", allowed) == ""  # search not granted
    assert scopes_narrow("system/*.rs", allowed) == ""
    assert scopes_narrow("user/Observation.rs", allowed) == ""  # other context
    assert scopes_narrow("system/Flag.rs system/Observation.r", "system/*.rs") == (
        "system/Flag.rs system/Observation.r"
    )
