"""The Django side of de-identification: what the clinic knows identifies one patient.

This is the only module of :mod:`privacy.deid` that touches Django models; the engine itself
never imports Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from privacy.deid.types import EMAIL_ADDRESS, PHONE_NUMBER, DenyList

if TYPE_CHECKING:
    from screening.models import Patient


def deny_list_for_patient(
    patient: Patient,
    *,
    city: str | None = None,
    extra_terms: Iterable[str] = (),
) -> DenyList:
    """Build the patient's deny-list: their name and its parts, their emergency contact's name
    (and phone and e-mail), the name on their login if any, and their city.

    Encrypted fields (``Patient.display_name``, ``EmergencyContact.*``) are decrypted here, in
    memory only; a decryption failure raises (callers must then withhold, not go on without the
    list). Patients have no city field yet: pass ``city``; the clinic's own ``city`` is used too
    if ``Organisation`` ever gets one. ``extra_terms`` are further names (a pet, a nickname, a
    workplace), matched as PERSON.
    """
    from screening.models import EmergencyContact

    names: list[str | None] = [patient.display_name]
    user = patient.user
    full_name = f"{user.first_name} {user.last_name}".strip()
    if full_name:
        names.append(full_name)
    extra: list[tuple[str, str]] = []
    try:
        contact = patient.emergency_contact
    except EmergencyContact.DoesNotExist:
        contact = None
    if contact is not None:
        names.append(contact.name)
        if contact.phone:
            extra.append((contact.phone, PHONE_NUMBER))
        if contact.email:
            extra.append((contact.email, EMAIL_ADDRESS))
    names.extend(extra_terms)
    clinic_city = getattr(patient.organisation, "city", None)
    locations = [c for c in (city, clinic_city) if isinstance(c, str) and c.strip()]
    return DenyList.build(names=names, locations=locations, extra=extra)
