from django.db import models


class ConsentScope(models.TextChoices):
    TEXT_ANALYSIS = "text_analysis", "Analysis of diary text"
    VOICE_ANALYSIS = "voice_analysis", "Analysis of voice in videos"
    FACE_ANALYSIS = "face_analysis", "Analysis of facial expression in videos"
    CARE_TEAM_SHARING = "care_team_sharing", "Sharing with the care team"
    EMERGENCY_CONTACT = "emergency_contact", "Contacting the emergency contact"
    RESEARCH = "research", "Use of de-identified data for research"


class AccessOutcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"
    SYSTEM = "system", "System"


#: The role recorded on an event whose caller was not signed in (no account, no clinic).
ANONYMOUS_ROLE = "anonymous"


class ActorRole(models.TextChoices):
    """Every ``AccessEvent.actor_role`` an auditor can filter on: the account roles, plus callers
    that are not signed in and the FHIR integration clients (filters only, no column choices)."""

    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"
    SYSTEM = "system", "System"
    ANONYMOUS = ANONYMOUS_ROLE, "Not signed in (anonymous)"
    FHIR_CLIENT = "fhir_client", "FHIR integration client"
