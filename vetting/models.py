from datetime import datetime
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketplace.fields import SkillListField, one_of
from marketplace.levels import Level


class Rubric(models.Model):
    """One version of the criteria engineers of a specialty are vetted against.

    A rubric never changes after it is created: a change is a new version
    (same specialty, version + 1). Applications pin the version they were
    submitted under, so their scores always refer to the criteria they were
    given against.
    """

    specialty = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The 0-4 scale in words, for criteria that do not describe their own.
    scale = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["specialty", "version"], name="vetting_rubric_version_unique")]
        ordering = ["specialty", "-version"]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class RubricCategory(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="categories")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rubric", "key"], name="vetting_category_key_unique")]
        ordering = ["rubric", "position"]
        verbose_name_plural = "rubric categories"

    def __str__(self) -> str:
        return self.name


class Criterion(models.Model):
    category = models.ForeignKey(RubricCategory, on_delete=models.CASCADE, related_name="criteria")
    key = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    probe = models.TextField(help_text="What the interviewer explores.")
    question = models.TextField(blank=True, help_text="An interview question, if this criterion has one.")
    strong_answer = models.TextField(blank=True, help_text="What a strong answer contains.")
    weight = models.PositiveSmallIntegerField()
    # Five descriptions: what a 0, 1, 2, 3 and 4 look like for this criterion.
    levels = models.JSONField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["category", "key"], name="vetting_criterion_key_unique"),
            models.CheckConstraint(condition=Q(weight__gte=1, weight__lte=5), name="vetting_criterion_weight_1_5"),
        ]
        ordering = ["category__position", "position"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return self.title


class ApplicationStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    SCREENING = "screening", "Screening"
    INTERVIEW = "interview", "Interview"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_STATUSES = (ApplicationStatus.SUBMITTED, ApplicationStatus.SCREENING, ApplicationStatus.INTERVIEW)
DECIDED_STATUSES = (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED)


class Application(models.Model):
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications")
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="applications")
    status = models.CharField(max_length=16, choices=ApplicationStatus.choices, default=ApplicationStatus.SUBMITTED)
    # What the engineer presented, as it was when they applied.
    headline = models.CharField(max_length=200, blank=True)
    skills = SkillListField()
    links = models.JSONField(default=list, blank=True)
    statement = models.TextField()
    submitted_at = models.DateTimeField(default=timezone.now)
    stage_entered_at = models.DateTimeField(default=timezone.now)
    interviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="interviews"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Shown to the engineer; interviewers' notes on scores are not.
    decision_reason = models.TextField(blank=True)
    score_bp = models.PositiveIntegerField(null=True, blank=True, help_text="Weighted score in basis points.")
    level = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["engineer"],
                condition=Q(status__in=["submitted", "screening", "interview"]),
                name="vetting_one_open_application_per_engineer",
            ),
            one_of("status", ApplicationStatus, name="vetting_application_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "submitted_at"], name="vetting_app_queue")]

    def __str__(self) -> str:
        return f"Application #{self.pk} by {self.engineer.email} ({self.get_status_display().lower()})"


class ApplicationEvent(models.Model):
    """The audit trail: every stage change, with who, when and why. Never edited."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class Score(models.Model):
    """One criterion's score in one application's interview; empty until the interviewer scores it.

    Append-only: changing a given score keeps the old row (`superseded_at` set) and
    adds a new one with its author, so every version and its note stay on record.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="scores")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+")
    value = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="Private to staff.")
    scored_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    scored_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["application", "criterion"],
                condition=Q(superseded_at=None),
                name="vetting_one_current_score_per_criterion",
            ),
            models.CheckConstraint(condition=Q(value__lte=4), name="vetting_score_0_4"),
        ]
        ordering = ["criterion__category__position", "criterion__position"]

    def __str__(self) -> str:
        return f"{self.criterion.title}: {self.value}"


def current_record_q(*, at: datetime, through: str = "") -> Q:
    """The rule for a current vetted record at `at`: not revoked, not superseded, not yet expired.

    `through` is the lookup path to the record from another model, with its trailing
    `__` (`"user__vetted_records__"`), for a join condition such as a FilteredRelation;
    everything else should use `VettedRecord.objects.current()`.
    """
    return Q(**{f"{through}revoked_at": None, f"{through}superseded_at": None, f"{through}expires_at__gt": at})


class VettedRecordQuerySet(models.QuerySet["VettedRecord"]):
    def current(self, at: datetime | None = None) -> Self:
        """Records that make an engineer matchable at `at` (an aware datetime; default now)."""
        return self.filter(current_record_q(at=at or timezone.now()))


class VettedRecord(models.Model):
    """What an approval grants: the engineer is matchable until it expires or is revoked."""

    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vetted_records")
    application = models.OneToOneField(Application, on_delete=models.PROTECT, related_name="vetted_record")
    level = models.CharField(max_length=16, choices=Level.choices)
    score_bp = models.PositiveIntegerField()
    # [{"key", "name", "score_bp"}] in rubric order, frozen at approval.
    category_scores = models.JSONField()
    vetted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    # When the engineer was reminded that the record is about to expire (once).
    reminded_at = models.DateTimeField(null=True, blank=True)

    objects = VettedRecordQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["engineer"],
                condition=Q(revoked_at=None, superseded_at=None),
                name="vetting_one_current_record_per_engineer",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at=None) | ~Q(revoke_reason=""), name="vetting_revocation_has_reason"
            ),
            one_of("level", Level, name="vetting_vettedrecord_level_valid"),
        ]
        indexes = [models.Index(fields=["engineer", "expires_at"], name="vetting_record_current")]

    def __str__(self) -> str:
        return f"{self.engineer.email}: vetted {self.level} until {self.expires_at:%Y-%m-%d}"
