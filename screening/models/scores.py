"""What the scoring stages derive from patients' inputs: text and media analyses, daily moods.

No raw patient text is stored in clear: evidence spans (which carry the matched excerpt) and
transcripts are encrypted under the patient's data key. Scores, flags and model versions are not.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver

from privacy.fields import EncryptedJSONField, EncryptedTextField
from screening.models.inputs import DiaryEntry, QuestionnaireResponse, VideoSubmission
from screening.models.people import Organisation, Patient


class TextSource(models.TextChoices):
    DIARY = "diary", "Diary entry"
    TRANSCRIPT = "transcript", "Video transcript"


class TextAnalysis(models.Model):
    """The text scorer's verdict on one diary entry or one video transcript (re-runs replace)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=TextSource.choices)
    diary_entry = models.OneToOneField(
        DiaryEntry,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="text_analysis",
    )
    video = models.OneToOneField(
        VideoSubmission,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="transcript_analysis",
    )
    local_date = models.DateField()
    #: valence, probabilities, emotions, risk level... (numbers and labels, never text)
    scores = models.JSONField(default=dict)
    valence = models.FloatField()
    confidence = models.FloatField()
    crisis_category = models.CharField(max_length=24, default="none")
    at_risk = models.BooleanField(default=False)
    at_risk_probability = models.FloatField(default=0.0)
    #: [{"id": "<analysis id>:<n>", "start", "end", "category", "rule_id", "excerpt"}]
    evidence = EncryptedJSONField(null=True, blank=True)
    models_info = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "text analyses"
        indexes = [models.Index(fields=["patient", "local_date"], name="textanalysis_day")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(source="diary", diary_entry__isnull=False, video__isnull=True)
                    | models.Q(source="transcript", diary_entry__isnull=True, video__isnull=False)
                ),
                name="textanalysis_one_source",
            )
        ]

    def __str__(self) -> str:
        return f"TextAnalysis {self.id} ({self.source})"

    @property
    def source_ref(self) -> str:
        return str(self.diary_entry_id or self.video_id)


class MediaAnalysis(models.Model):
    """The media pipeline's result for one video. Parts without consent are never computed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    video = models.OneToOneField(
        VideoSubmission, on_delete=models.CASCADE, related_name="media_analysis"
    )
    local_date = models.DateField()
    prosody = models.JSONField(null=True, blank=True)  # features; None: not analysed / abstained
    face = models.JSONField(null=True, blank=True)
    #: signed robust z-scores against the patient's baseline: {"voice": {...}, "face": {...}}
    baseline = models.JSONField(default=dict)
    quality_flags = models.JSONField(default=list)
    abstentions = models.JSONField(default=dict)  # part -> reason
    distress = models.FloatField(null=True, blank=True)
    distress_confidence = models.FloatField(default=0.0)
    transcript = EncryptedTextField(null=True, blank=True)
    models_info = models.JSONField(default=list)
    timings_ms = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "media analyses"
        indexes = [models.Index(fields=["patient", "local_date"], name="mediaanalysis_day")]

    def __str__(self) -> str:
        return f"MediaAnalysis {self.id}"


class DailyMoodScore(models.Model):
    """The fused mood of one patient's local day (-10 worst .. +10), or an abstention."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    local_date = models.DateField()
    score = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(default=0.0)
    abstained = models.BooleanField(default=False)
    reason = models.CharField(max_length=64, blank=True)
    #: top contributions: [{"modality", "score", "pull", "direction", "phrase", ...}]
    contributions = models.JSONField(default=list)
    explanation = models.CharField(max_length=400, blank=True)  # plain words, no patient text
    inputs = models.JSONField(default=dict)  # modality -> ids of the submissions used
    fusion_version = models.CharField(max_length=32)
    weights_id = models.UUIDField(null=True, blank=True)  # the clinic's FusionWeights, if any
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "local_date"], name="dailymood_per_day")
        ]
        indexes = [models.Index(fields=["patient", "-local_date"], name="dailymood_recent")]

    def __str__(self) -> str:
        return f"DailyMoodScore {self.local_date} {self.score}"


class FusionWeights(models.Model):
    """Fusion weights a clinic fitted on its own labelled history (``manage.py fit_fusion``).

    The newest row of an organisation is used; older rows stay as the record of what was used.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="fusion_weights"
    )
    weights = models.JSONField()
    fusion_version = models.CharField(max_length=32)
    n_examples = models.PositiveIntegerField()
    mae = models.FloatField()
    ccc = models.FloatField(null=True, blank=True)
    report = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "fusion weights"
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="fusionweights_recent")
        ]

    def __str__(self) -> str:
        return f"FusionWeights {self.organisation_id} {self.created_at:%Y-%m-%d}"


@receiver(post_save, sender=QuestionnaireResponse, dispatch_uid="scores_questionnaire_saved")
def _questionnaire_saved(
    sender: Any, instance: QuestionnaireResponse, created: bool, **_: Any
) -> None:
    """A new questionnaire recomputes its day's mood after the commit (PHQ-9/GAD-7 are inputs)."""
    if created:
        from screening.services.scoring import questionnaire_committed

        questionnaire_committed(response=instance)
