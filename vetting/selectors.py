"""Reads for vetting: the staff queue, what an engineer sees, and who may be matched."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import User
from vetting.models import OPEN_STATUSES, Application, ApplicationStatus, Rubric, VettedRecord


def current_records(*, now: datetime | None = None) -> QuerySet[VettedRecord]:
    """Records that make an engineer matchable right now: not revoked, not superseded, not expired."""
    return VettedRecord.objects.current(at=now)


def matchable_engineers(*, now: datetime | None = None) -> QuerySet[User]:
    """Active engineers with a current vetted record: who vetting calls matchable.

    Ranking does not start from this set; `hiring_requests.matching` joins the same
    current-record rule (`vetting.models.current_record_q`) onto engineer profiles.
    """
    return User.objects.filter(
        Exists(current_records(now=now).filter(engineer=OuterRef("pk"))), is_active=True, role="engineer"
    )


def vetted_record_of(*, engineer: User) -> VettedRecord | None:
    return current_records().filter(engineer=engineer).first()


def screening_due(application: Application) -> datetime:
    return application.submitted_at + timedelta(days=settings.VETTING_SCREENING_TARGET_DAYS)


def decision_due(application: Application) -> datetime:
    return application.submitted_at + timedelta(days=settings.VETTING_DECISION_TARGET_DAYS)


def staff_queue(*, status: str | None = None, overdue_only: bool = False) -> QuerySet[Application]:
    """Applications in flight, oldest first, each marked overdue when it missed its stage's target.

    Screening is due `VETTING_SCREENING_TARGET_DAYS` after submission, the
    decision `VETTING_DECISION_TARGET_DAYS` after it.
    """
    now = timezone.now()
    screening_cutoff = now - timedelta(days=settings.VETTING_SCREENING_TARGET_DAYS)
    decision_cutoff = now - timedelta(days=settings.VETTING_DECISION_TARGET_DAYS)
    overdue = Q(status=ApplicationStatus.SUBMITTED, submitted_at__lt=screening_cutoff) | Q(
        status__in=OPEN_STATUSES, submitted_at__lt=decision_cutoff
    )
    queryset = (
        Application.objects.filter(status__in=[status] if status else OPEN_STATUSES)
        .select_related("engineer", "interviewer", "rubric")
        .annotate(is_overdue=Case(When(overdue, then=Value(True)), default=Value(False), output_field=BooleanField()))
        .order_by("submitted_at", "id")
    )
    if overdue_only:
        queryset = queryset.filter(overdue)
    return queryset


def applications_of(*, engineer: User) -> QuerySet[Application]:
    applications = Application.objects.filter(engineer=engineer).select_related("vetted_record")
    return applications.order_by("-submitted_at", "-id")


def application_for_staff(*, application_id: int) -> Application | None:
    return (
        Application.objects.select_related("engineer", "interviewer", "decided_by", "rubric")
        .prefetch_related("scores__criterion__category", "events__actor")
        .filter(pk=application_id)
        .first()
    )


def rubrics() -> QuerySet[Rubric]:
    return Rubric.objects.order_by("specialty", "-version", "id")


def rubric_detail(*, rubric_id: int) -> Rubric | None:
    return Rubric.objects.prefetch_related("categories__criteria").filter(pk=rubric_id).first()


def engineer_card_record(*, viewer: User, engineer_id: int) -> VettedRecord | None:
    """The vetted record behind an engineer's card, if `viewer` may see it.

    Staff and the engineer themself may; a client may once the engineer is on
    one of that client's shortlists (hiring_requests decides that).
    """
    from hiring_requests.selectors import client_has_shortlisted

    allowed = (
        viewer.is_staff
        or viewer.pk == engineer_id
        or (viewer.is_client and client_has_shortlisted(client=viewer, engineer_id=engineer_id))
    )
    if not allowed:
        return None
    return (
        current_records()
        .select_related("engineer__engineer_profile", "application")
        .filter(engineer_id=engineer_id)
        .first()
    )


def engineer_card(*, viewer: User, engineer_id: int) -> dict[str, Any] | None:
    """The card a client weighs an engineer by: level, per-category scores, vetting date, skills."""
    record = engineer_card_record(viewer=viewer, engineer_id=engineer_id)
    if record is None:
        return None
    engineer = record.engineer
    profile = engineer.engineer_profile
    return {
        "engineer_id": engineer.pk,
        "full_name": engineer.full_name,
        "headline": profile.headline,
        "skills": profile.skills,
        "vetted_skills": sorted(record.application.skills),
        "declared_skills": sorted(set(profile.skills) - set(record.application.skills)),
        "level": record.level,
        "category_scores": record.category_scores,
        "vetted_at": record.vetted_at,
        "expires_at": record.expires_at,
    }
