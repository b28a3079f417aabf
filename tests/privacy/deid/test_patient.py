"""``deny_list_for_patient``: the clinic's knowledge of a patient, decrypted only in memory."""

from __future__ import annotations

from typing import Any

import pytest

from privacy.deid import deidentify
from privacy.deid.patient import deny_list_for_patient
from screening.services.people import emergency_contact_set

pytestmark = pytest.mark.usefixtures("deid_engine")


@pytest.mark.django_db
def test_deny_list_for_patient(world: Any) -> None:
    patient = world.patient_a  # display name "Alice Example" (encrypted)
    emergency_contact_set(
        patient=patient, name="Bartholomew Quince", phone="07700 900111", relationship="brother"
    )
    deny = deny_list_for_patient(patient, city="Oakhaven")
    terms = {(t.term, t.entity_type) for t in deny.terms}
    assert ("Alice Example", "PERSON") in terms
    assert ("Alice", "PERSON") in terms and ("Example", "PERSON") in terms
    assert ("Bartholomew Quince", "PERSON") in terms
    assert ("Oakhaven", "LOCATION") in terms
    assert ("07700 900111", "PHONE_NUMBER") in terms

    text = "ALICE EXAMPLE here. quince drove me round oakhaven; alice is tired. BARTHOLOMEW!"
    result = deidentify(text, deny_list=deny)
    lowered = result.text.lower()
    for word in ("alice", "example", "quince", "oakhaven", "bartholomew"):
        assert word not in lowered, result.text


@pytest.mark.django_db
def test_deny_list_without_emergency_contact_or_city(world: Any) -> None:
    deny = deny_list_for_patient(world.patient_b)  # "Bob Example", no contact
    assert {t.term for t in deny.terms} == {"Bob Example", "Bob", "Example"}
    # "bob" is also a word: as a lone part it must be capitalised to match.
    assert "bob" in deny.capitalised_only
