from django.db import models


class Instrument(models.TextChoices):
    PHQ9 = "phq9", "PHQ-9"
    GAD7 = "gad7", "GAD-7"


class VideoStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class VideoStage(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFYING = "verifying", "Checking the stored file"
    ANALYSING = "analysing", "Analysing"
    COMPLETE = "complete", "Complete"


class EmergencyStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
