from screening.models.inputs import (
    DiaryEntry,
    Emergency,
    HelpRequest,
    QuestionnaireResponse,
    VideoSubmission,
)
from screening.models.people import (
    Auditor,
    CareTeam,
    Clinician,
    EmergencyContact,
    Organisation,
    Patient,
    User,
)

__all__ = [
    "Auditor",
    "CareTeam",
    "Clinician",
    "DiaryEntry",
    "Emergency",
    "EmergencyContact",
    "HelpRequest",
    "Organisation",
    "Patient",
    "QuestionnaireResponse",
    "User",
    "VideoSubmission",
]
