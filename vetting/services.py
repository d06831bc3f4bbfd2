"""Every write in vetting: applying, moving through the stages, scoring, deciding, revoking.

Each stage change locks the application row, checks the move against
`ALLOWED_MOVES`, saves only the fields it changes and records an
`ApplicationEvent` (who, when, note). The admin and the API call these same
functions.
"""

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import User
from marketplace import seams
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from vetting import levels
from vetting.errors import (
    AlreadyRevoked,
    AlreadyVetted,
    ApplicationAlreadyOpen,
    ApplicationNotFound,
    BelowTheBar,
    CooldownActive,
    FourEyes,
    InvalidInterviewer,
    InvalidRubric,
    InvalidScore,
    NotAnEngineer,
    NotTheInterviewer,
    OwnVetting,
    ReasonRequired,
    RecordNotFound,
    RubricNotFound,
    ScoresIncomplete,
    TransitionNotAllowed,
)
from vetting.models import (
    Application,
    ApplicationEvent,
    ApplicationStatus,
    Criterion,
    Rubric,
    RubricCategory,
    Score,
    VettedRecord,
)
from vetting.rubric_spec import DEFAULT_SPECIALTY, build_rubric, validate_spec

logger = logging.getLogger(__name__)

S = ApplicationStatus
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    S.SUBMITTED: frozenset({S.SCREENING, S.REJECTED, S.WITHDRAWN}),
    S.SCREENING: frozenset({S.INTERVIEW, S.REJECTED, S.WITHDRAWN}),
    S.INTERVIEW: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN}),
    S.APPROVED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}


# --- rubrics ---------------------------------------------------------------------


def rubric_current(*, specialty: str = DEFAULT_SPECIALTY) -> Rubric:
    rubric = Rubric.objects.filter(specialty=specialty).order_by("-version").first()
    if rubric is None:
        raise RubricNotFound()
    return rubric


def rubric_create(*, spec: dict[str, Any], actor: User) -> Rubric:
    """Store a new rubric, or the next version of an existing specialty's. Old versions stay as they were."""
    try:
        validate_spec(spec)
    except ValueError as exc:
        raise InvalidRubric(str(exc)) from None
    with transaction.atomic():
        # Lock the specialty's versions so two staff publishing at once get distinct numbers.
        latest = Rubric.objects.select_for_update().filter(specialty=spec["specialty"]).order_by("-version").first()
        rubric = build_rubric(
            spec,
            version=(latest.version + 1) if latest else 1,
            created_by_id=actor.pk,
            rubric_model=Rubric,
            category_model=RubricCategory,
            criterion_model=Criterion,
        )
    logger.info("rubric.created", extra={"rubric_id": rubric.pk, "specialty": rubric.specialty})
    return cast(Rubric, rubric)


# --- applying ----------------------------------------------------------------------


def _current_record(engineer: User) -> VettedRecord | None:
    return VettedRecord.objects.current().filter(engineer=engineer).first()


def reapply_allowed_at(engineer: User) -> datetime | None:
    """When the engineer may apply again (UTC), or None if nothing holds them back.

    A rejection, a withdrawal after the interview began (the same signal as a
    rejection: it must not dodge the cooldown), and a revocation each start a
    cooldown: VETTING_REAPPLY_COOLDOWN_DAYS, or VETTING_REVOKED_COOLDOWN_DAYS for a
    revocation.
    """
    holds: list[datetime] = []
    rejected = Application.objects.filter(engineer=engineer, status=S.REJECTED).order_by("-decided_at").first()
    if rejected is not None and rejected.decided_at is not None:
        holds.append(rejected.decided_at + timedelta(days=settings.VETTING_REAPPLY_COOLDOWN_DAYS))
    interviewed = ApplicationEvent.objects.filter(application=OuterRef("pk"), to_status=S.INTERVIEW)
    withdrawn = (
        Application.objects.filter(Exists(interviewed), engineer=engineer, status=S.WITHDRAWN)
        .order_by("-stage_entered_at")
        .first()
    )
    if withdrawn is not None:
        holds.append(withdrawn.stage_entered_at + timedelta(days=settings.VETTING_REAPPLY_COOLDOWN_DAYS))
    revoked = VettedRecord.objects.filter(engineer=engineer).exclude(revoked_at=None).order_by("-revoked_at").first()
    if revoked is not None and revoked.revoked_at is not None:
        holds.append(revoked.revoked_at + timedelta(days=settings.VETTING_REVOKED_COOLDOWN_DAYS))
    return max(holds) if holds else None


def application_submit(
    *, engineer: User, statement: str, links: list[str], specialty: str = DEFAULT_SPECIALTY
) -> Application:
    """An engineer applies; the profile's headline and skills are copied as they are now."""
    if not engineer.is_engineer:
        raise NotAnEngineer()
    current = _current_record(engineer)
    renewal_opens = timezone.now() + timedelta(days=settings.VETTING_RENEWAL_WINDOW_DAYS)
    if current is not None and current.expires_at > renewal_opens:
        opens_at = current.expires_at - timedelta(days=settings.VETTING_RENEWAL_WINDOW_DAYS)
        raise AlreadyVetted(f"Your vetting is current; renewal opens on {opens_at:%Y-%m-%d}.")
    reapply_at = reapply_allowed_at(engineer)
    if reapply_at is not None and timezone.now() < reapply_at:
        raise CooldownActive(f"You can apply again from {reapply_at:%Y-%m-%d %H:%M} UTC.")
    rubric = rubric_current(specialty=specialty)
    profile = engineer.engineer_profile
    try:
        with transaction.atomic():
            application = Application.objects.create(
                engineer=engineer,
                rubric=rubric,
                headline=profile.headline,
                skills=list(profile.skills),
                links=links,
                statement=statement,
            )
            ApplicationEvent.objects.create(
                application=application, from_status="", to_status=S.SUBMITTED, actor=engineer
            )
    except IntegrityError:
        # The partial unique index, not a read-then-write check, is what stops a second open application.
        raise ApplicationAlreadyOpen() from None
    logger.info("application.submitted", extra={"application_id": application.pk, "engineer_id": engineer.pk})
    return application


# --- moving through the stages -----------------------------------------------------


def _lock(application_id: int) -> Application:
    application = Application.objects.select_for_update().filter(pk=application_id).first()
    if application is None:
        raise ApplicationNotFound()
    return application


def _move(application: Application, to: ApplicationStatus, *, actor: User, note: str, fields: list[str]) -> None:
    if to not in ALLOWED_MOVES[application.status]:
        raise TransitionNotAllowed(f"An application that is {application.status} cannot move to {to}.")
    now = timezone.now()
    from_status = application.status
    application.status = to
    application.stage_entered_at = now
    application.save(update_fields=["status", "stage_entered_at", *fields])
    ApplicationEvent.objects.create(
        application=application, from_status=from_status, to_status=to, actor=actor, note=note, created_at=now
    )
    notify_user(
        user_id=application.engineer_id,
        event="vetting.stage_changed",
        payload={"application_id": application.pk, "status": to},
    )
    logger.info(
        "application.moved",
        extra={"application_id": application.pk, "from": from_status, "to": to, "actor_id": actor.pk},
    )


def _require_staff(actor: User) -> None:
    # The API and admin check this too; a service is also an entry point.
    if not actor.is_staff:
        raise Forbidden("Only staff move applications.")


def _require_independent(actor: User, application: Application) -> None:
    """Raise OwnVetting when a staff member who is also the engineer acts on their own application."""
    if actor.pk == application.engineer_id:
        raise OwnVetting()


def application_start_screening(*, application_id: int, actor: User, note: str = "") -> Application:
    _require_staff(actor)
    with transaction.atomic():
        application = _lock(application_id)
        _require_independent(actor, application)
        _move(application, S.SCREENING, actor=actor, note=note, fields=[])
    return application


def application_start_interview(
    *, application_id: int, actor: User, interviewer: User | None = None, note: str = ""
) -> Application:
    """Move to interview and lay out one empty score per criterion of the application's rubric."""
    _require_staff(actor)
    interviewer = interviewer or actor
    if not (interviewer.is_staff and interviewer.is_active):
        raise InvalidInterviewer()
    with transaction.atomic():
        application = _lock(application_id)
        _require_independent(actor, application)
        _require_independent(interviewer, application)
        application.interviewer = interviewer
        _move(application, S.INTERVIEW, actor=actor, note=note, fields=["interviewer"])
        criteria = Criterion.objects.filter(category__rubric_id=application.rubric_id)
        Score.objects.bulk_create(
            [Score(application=application, criterion=criterion) for criterion in criteria],
            ignore_conflicts=True,
        )
    return application


def interview_score(*, application_id: int, actor: User, scores: list[tuple[int, int, str]]) -> list[Score]:
    """Record (criterion_id, value 0-4, note) scores while the application is in interview.

    Only the application's interviewer scores it (NotTheInterviewer). Append-only:
    a score that changes keeps its old version (superseded, with its author and
    note) and gains a new one. Returns the scores written.
    """
    _require_staff(actor)
    with transaction.atomic():
        application = _lock(application_id)
        _require_independent(actor, application)
        if application.status != S.INTERVIEW:
            raise TransitionNotAllowed("Scores are given only while the application is in interview.")
        if actor.pk != application.interviewer_id:
            raise NotTheInterviewer()
        criterion_ids = [criterion_id for criterion_id, _, _ in scores]
        if len(set(criterion_ids)) != len(criterion_ids):
            raise InvalidScore("Each criterion is scored once per call.")
        rows = {
            row.criterion_id: row
            for row in Score.objects.select_for_update().filter(application=application, superseded_at=None)
        }
        now = timezone.now()
        written = []
        for criterion_id, value, note in scores:
            row = rows.get(criterion_id)
            if row is None:
                raise InvalidScore(f"Criterion {criterion_id} is not part of this application's rubric.")
            if not 0 <= value <= levels.MAX_SCORE:
                raise InvalidScore(f"Score {value} for criterion {criterion_id} is outside 0-4.")
            if row.value is None:
                # The empty slot laid out at the interview's start: the first score fills it.
                row.value, row.note, row.scored_by, row.scored_at = value, note, actor, now
                row.save(update_fields=["value", "note", "scored_by", "scored_at"])
                written.append(row)
            elif (row.value, row.note) != (value, note):
                Score.objects.filter(pk=row.pk).update(superseded_at=now)
                written.append(
                    Score.objects.create(
                        application=application,
                        criterion_id=criterion_id,
                        value=value,
                        note=note,
                        scored_by=actor,
                        scored_at=now,
                    )
                )
    return written


def _assess(application: Application) -> levels.Assessment:
    scores = list(
        Score.objects.filter(application=application, superseded_at=None).select_related("criterion__category")
    )
    unscored = [score.criterion.title for score in scores if score.value is None]
    if unscored or not scores:
        raise ScoresIncomplete(f"Not yet scored: {', '.join(unscored)}.")
    return levels.assess(
        levels.ScoredCriterion(
            category_key=score.criterion.category.key, weight=score.criterion.weight, value=score.value or 0
        )
        for score in scores
    )


def application_approve(*, application_id: int, actor: User, note: str = "") -> VettedRecord:
    """Decide yes: needs every criterion scored and a level; grants a vetted record."""
    _require_staff(actor)
    with transaction.atomic():
        application = _lock(application_id)
        _require_independent(actor, application)
        if S.APPROVED not in ALLOWED_MOVES[application.status]:
            raise TransitionNotAllowed(f"An application that is {application.status} cannot be approved.")
        scorers = set(Score.objects.filter(application=application).values_list("scored_by_id", flat=True))
        if actor.pk == application.interviewer_id or actor.pk in scorers:
            raise FourEyes()
        held_until = reapply_allowed_at(application.engineer)
        if held_until is not None and timezone.now() < held_until:
            # Revoked (or rejected) since this application was submitted: it cannot grant a record now.
            raise CooldownActive(f"The engineer may not be vetted again before {held_until:%Y-%m-%d %H:%M} UTC.")
        assessment = _assess(application)
        if assessment.level is None:
            raise BelowTheBar(
                f"Weighted score {assessment.score_bp / 100:.2f}% with must-have skills at "
                f"{assessment.category_bp.get(levels.MUST_HAVE_CATEGORY, 0) / 100:.2f}%: below the bar "
                f"({levels.THRESHOLDS_BP[-1][1] / 100:.2f}% overall and {levels.MUST_HAVE_FLOOR_BP / 100:.2f}% "
                "on must-haves; docs/vetting.md)."
            )
        now = timezone.now()
        application.decided_at, application.decided_by, application.decision_reason = now, actor, note
        application.score_bp, application.level = assessment.score_bp, assessment.level
        _move(
            application,
            S.APPROVED,
            actor=actor,
            note=note,
            fields=["decided_at", "decided_by", "decision_reason", "score_bp", "level"],
        )
        VettedRecord.objects.filter(engineer_id=application.engineer_id, revoked_at=None, superseded_at=None).update(
            superseded_at=now
        )
        categories = RubricCategory.objects.filter(rubric_id=application.rubric_id).order_by("position")
        record = VettedRecord.objects.create(
            engineer_id=application.engineer_id,
            application=application,
            level=assessment.level,
            score_bp=assessment.score_bp,
            category_scores=[
                {"key": c.key, "name": c.name, "score_bp": assessment.category_bp[c.key]} for c in categories
            ],
            vetted_at=now,
            expires_at=now + timedelta(days=settings.VETTING_VALIDITY_DAYS),
        )
    return record


def application_reject(*, application_id: int, actor: User, reason: str) -> Application:
    """Decide no. At the interview stage this also needs every criterion scored."""
    _require_staff(actor)
    if not reason.strip():
        raise ReasonRequired("Say why the application is rejected; the engineer sees this.")
    with transaction.atomic():
        application = _lock(application_id)
        _require_independent(actor, application)
        if S.REJECTED not in ALLOWED_MOVES[application.status]:
            raise TransitionNotAllowed(f"An application that is {application.status} cannot be rejected.")
        fields = ["decided_at", "decided_by", "decision_reason"]
        if application.status == S.INTERVIEW:
            assessment = _assess(application)
            application.score_bp, application.level = assessment.score_bp, assessment.level or ""
            fields += ["score_bp", "level"]
        application.decided_at, application.decided_by, application.decision_reason = timezone.now(), actor, reason
        _move(application, S.REJECTED, actor=actor, note=reason, fields=fields)
    return application


def application_withdraw(*, application_id: int, engineer: User) -> Application:
    with transaction.atomic():
        application = Application.objects.select_for_update().filter(pk=application_id, engineer=engineer).first()
        if application is None:
            raise ApplicationNotFound()
        _move(application, S.WITHDRAWN, actor=engineer, note="withdrawn by the engineer", fields=[])
    return application


def vetted_record_revoke(*, record_id: int, actor: User, reason: str) -> VettedRecord:
    """Take an engineer out of matching now. The reason is kept with the record and told to the engineer.

    Their pending offers and shortlist places are withdrawn, and each client is told why.
    """
    _require_staff(actor)
    if not reason.strip():
        raise ReasonRequired("Say why the vetting is revoked.")
    with transaction.atomic():
        record = VettedRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None:
            raise RecordNotFound()
        if record.revoked_at is not None:
            raise AlreadyRevoked()
        record.revoked_at, record.revoked_by, record.revoke_reason = timezone.now(), actor, reason
        record.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        # Out of matching now means off every open offer and shortlist too, and both sides told why;
        # revoking an old record that a newer one replaced takes nothing away. After commit, in
        # transactions of its own: hiring_requests locks a request before the engineer's record (an
        # accept, a hire), so doing it here, under the record's lock, could deadlock with one. An
        # accept that committed first is withdrawn here; one that comes after finds the record revoked.
        # Should this fail, the clock sweep takes off whoever has no current record (`vetting_lapses_sweep`).
        if record.superseded_at is None:
            engineer_id, told = record.engineer_id, f"the engineer's vetting was revoked: {reason}"
            transaction.on_commit(
                lambda: seams.vetting_lapsed.send(sender=VettedRecord, engineer_id=engineer_id, reason=told),
                robust=True,
            )
        notify_user(
            user_id=record.engineer_id, event="vetting.revoked", payload={"record_id": record.pk, "reason": reason}
        )
    logger.info("vetting.revoked", extra={"record_id": record.pk, "engineer_id": record.engineer_id})
    return record


def vetting_expiry_reminders() -> int:
    """Tell each engineer whose record expires within VETTING_RENEWAL_WINDOW_DAYS that renewal is open (once).

    Compare-and-set on `reminded_at`, so two runs never remind twice. Returns how many were reminded.
    """
    now = timezone.now()
    due = VettedRecord.objects.current(at=now).filter(
        reminded_at=None, expires_at__lte=now + timedelta(days=settings.VETTING_RENEWAL_WINDOW_DAYS)
    )
    reminded = 0
    for record_id, engineer_id, expires_at in due.values_list("pk", "engineer_id", "expires_at"):
        with transaction.atomic():
            if VettedRecord.objects.filter(pk=record_id, reminded_at=None).update(reminded_at=now) == 1:
                notify_user(
                    user_id=engineer_id,
                    event="vetting.renewal_open",
                    payload={"record_id": record_id, "expires_at": expires_at.isoformat()},
                )
                reminded += 1
    return reminded
