"""Reads for vetting: the staff queue, what an engineer sees, and who may be matched."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import User
from marketplace import seams
from vetting.models import OPEN_STATUSES, Application, ApplicationStatus, Rubric, VettedRecord

# Published here, for matching, which joins the current-record rule onto engineer profiles.
from vetting.models import current_record_q as current_record_q  # noqa: PLC0414 - an explicit re-export


def current_records(*, now: datetime | None = None) -> QuerySet[VettedRecord]:
    """Records that make an engineer matchable right now: not revoked, not superseded, not expired."""
    return VettedRecord.objects.current(at=now)


def matchable_engineers(*, now: datetime | None = None) -> QuerySet[User]:
    """Active engineers with a current vetted record: who vetting calls matchable.

    Ranking does not start from this set; `hiring_requests.matching` joins the same
    current-record rule (`current_record_q`) onto engineer profiles.
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


def engineer_cards(*, viewer: User, engineer_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The cards of `engineer_ids` that `viewer` may see, by engineer id, in two queries however many.

    Staff and the engineer themself may see a card; a client may once the engineer is on
    one of that client's shortlists (hiring_requests decides that, through marketplace.seams). An engineer the viewer
    may not see, or with no current vetted record, has no entry.
    """
    wanted = set(engineer_ids)
    if not viewer.is_staff:
        allowed = wanted & {viewer.pk}
        if viewer.is_client and wanted - allowed:
            allowed |= seams.client_shortlisted(client=viewer, engineer_ids=wanted - allowed)
        wanted = allowed
    if not wanted:
        return {}
    records = (
        current_records()
        .select_related("engineer__engineer_profile", "application")
        .filter(engineer_id__in=wanted)
        .only(*_CARD_COLUMNS)
    )
    return {record.engineer_id: _card(record) for record in records}


def engineer_card(*, viewer: User, engineer_id: int) -> dict[str, Any] | None:
    """The card a client weighs an engineer by, if `viewer` may see it (`engineer_cards`)."""
    return engineer_cards(viewer=viewer, engineer_ids=[engineer_id]).get(engineer_id)


# What `_card` reads, and nothing more: a shortlist's page builds three models a row.
_CARD_COLUMNS = (
    "engineer_id",
    "level",
    "category_scores",
    "vetted_at",
    "expires_at",
    "engineer__full_name",
    "engineer__engineer_profile__headline",
    "engineer__engineer_profile__skills",
    "application__skills",
)


def _card(record: VettedRecord) -> dict[str, Any]:
    """The card a client weighs an engineer by: level, per-category scores, vetting date, skills."""
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
