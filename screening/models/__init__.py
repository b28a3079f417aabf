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
from screening.models.scores import (
    DailyMoodScore,
    FusionWeights,
    MediaAnalysis,
    TextAnalysis,
    TextSource,
)

__all__ = [
    "Auditor",
    "CareTeam",
    "Clinician",
    "DailyMoodScore",
    "DiaryEntry",
    "Emergency",
    "EmergencyContact",
    "FusionWeights",
    "HelpRequest",
    "MediaAnalysis",
    "Organisation",
    "Patient",
    "QuestionnaireResponse",
    "TextAnalysis",
    "TextSource",
    "User",
    "VideoSubmission",
]
