"""Every write for requests: drafting, raising, waves, answers, the clock, hiring.

The matching job and the sweep may run twice, or on two workers at once: each
wave is decided under a lock on the request row, invitations are unique per
(request, engineer) in the database, and every one-off mark (warning, breach,
expiry) is a compare-and-set update that only one caller can win.

Every state change of a request goes through `_move`, and of an invitation
through `_move_invitation`: each checks the move against its table
(`REQUEST_MOVES`, `INVITATION_MOVES` in `hiring_requests.models`) and saves only
the fields it changes. The few bulk updates (expiry, withdrawing a request's
pending offers, ending engagements) stand in for them, each guarded in its WHERE
by the states it moves from, which the table allows to move to its target.
"""

import logging
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import EngineerProfile, User
from conversations.selectors import conversation_id_between
from conversations.services import conversation_open, system_message_post
from hiring_requests import capacity, matching
from hiring_requests.errors import (
    EngineerNotVetted,
    InvalidOffer,
    InvalidRequest,
    InvitationExpired,
    InvitationNotFound,
    InvitationNotPending,
    NotAClient,
    NotShortlisted,
    OverBudget,
    PayoutsNotEnabled,
    RequestNotFound,
    RequestStateConflict,
)
from hiring_requests.models import (
    ACTIVE_STATUSES,
    ENGAGEMENT_MOVES,
    HOLDING_STATUSES,
    INVITATION_MOVES,
    REQUEST_MOVES,
    BudgetKind,
    Engagement,
    EngagementStatus,
    HiringRequest,
    Invitation,
    InvitationStatus,
    RequestEvent,
    RequestStatus,
    moves_into,
)
from marketplace import metrics
from marketplace.errors import Forbidden
from marketplace.levels import Level
from marketplace.money import format_money
from marketplace.notifications import notify_user
from marketplace.schemas import SUPPORTED_CURRENCIES
from marketplace.skills import normalize_skills
from marketplace.timezones import is_time_zone
from payments.selectors import payouts_enabled
from payments.services.hourly import billing_open
from reviews.services import engagement_ended

logger = logging.getLogger(__name__)

R = RequestStatus
# An engineer's working day, in their own time zone (offers sent outside it wait for the morning).
WORKDAY_START, WORKDAY_END = 9, 17
# The highest hourly rate an engineer may propose: 10,000.00 in a two-decimal currency.
MAX_RATE_MINOR = 1_000_000
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "required_skills",
        "nice_to_have_skills",
        "min_level",
        "budget_kind",
        "budget_minor",
        "currency",
        "hours_per_week",
        "expected_weeks",
        "time_zone",
        "min_overlap_hours",
        "start_date",
    }
)


def _record(request: HiringRequest, kind: str, **data: Any) -> None:
    RequestEvent.objects.create(request=request, kind=kind, data=data)


def _move(request: HiringRequest, to: RequestStatus, *, fields: list[str]) -> None:
    """Save `request` in state `to` with `fields`, if REQUEST_MOVES allows it. Raises RequestStateConflict.

    The caller holds the row lock and records what happened (`_record`): a request's
    events name the deed (a wave, an answer, a hire), not the state it leads to.
    """
    if to not in REQUEST_MOVES[request.status]:
        raise RequestStateConflict(f"A {request.status} request cannot become {to}.")
    from_status = request.status
    request.status = to
    request.save(update_fields=["status", *fields])
    logger.info("request.moved", extra={"hiring_request_id": request.pk, "from": from_status, "to": to})


def _move_invitation(invitation: Invitation, to: InvitationStatus, *, fields: list[str]) -> None:
    """Save `invitation` in state `to` with `fields`, if INVITATION_MOVES allows it. Raises InvitationNotPending.

    The caller holds the row lock.
    """
    if to not in INVITATION_MOVES[invitation.status]:
        raise InvitationNotPending(f"A {invitation.status} invitation cannot become {to}.")
    invitation.status = to
    invitation.save(update_fields=["status", *fields])


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Normalize and check the domain rules the schema cannot express."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise InvalidRequest(f"not writable: {', '.join(sorted(unknown))}")
    cleaned = dict(fields)
    for name in ("required_skills", "nice_to_have_skills"):
        if name in cleaned:
            try:
                cleaned[name] = normalize_skills(cleaned[name])
            except ValueError as exc:
                raise InvalidRequest(f"{name}: {exc}", field=name) from None
    if "required_skills" in cleaned and not cleaned["required_skills"]:
        raise InvalidRequest("required_skills: name at least one skill", field="required_skills")
    if "currency" in cleaned:
        cleaned["currency"] = cleaned["currency"].lower()
        if cleaned["currency"] not in SUPPORTED_CURRENCIES:
            raise InvalidRequest(f"currency: {cleaned['currency']!r} is not supported", field="currency")
    if "time_zone" in cleaned and not is_time_zone(cleaned["time_zone"]):
        raise InvalidRequest(f"time_zone: {cleaned['time_zone']!r} is not an IANA time zone", field="time_zone")
    if "min_level" in cleaned and cleaned["min_level"] not in Level.values:
        raise InvalidRequest(f"min_level: one of {', '.join(Level.values)}", field="min_level")
    if "budget_kind" in cleaned and cleaned["budget_kind"] not in BudgetKind.values:
        raise InvalidRequest("budget_kind: hourly or fixed", field="budget_kind")
    return cleaned


def _require_client(user: User) -> None:
    if not user.is_client:
        raise NotAClient()


def request_create(*, client: User, fields: dict[str, Any]) -> HiringRequest:
    """A draft; nothing is matched until it is raised."""
    _require_client(client)
    cleaned = _clean(fields)
    # A skill both required and nice to have is required: the nice-to-have copy adds nothing.
    if "nice_to_have_skills" in cleaned and "required_skills" in cleaned:
        required = set(cleaned["required_skills"])
        cleaned["nice_to_have_skills"] = [s for s in cleaned["nice_to_have_skills"] if s not in required]
    with transaction.atomic():
        request = HiringRequest.objects.create(client=client, **cleaned)
        _record(request, "created")
    return request


def _lock_own(client: User, request_id: int) -> HiringRequest:
    request = HiringRequest.objects.select_for_update().filter(pk=request_id, client=client).first()
    if request is None:
        raise RequestNotFound()
    return request


def request_update(*, client: User, request_id: int, fields: dict[str, Any]) -> HiringRequest:
    cleaned = _clean(fields)
    with transaction.atomic():
        request = _lock_own(client, request_id)
        if request.status != R.DRAFT:
            raise RequestStateConflict("Only a draft can be edited; cancel and raise a new request instead.")
        for name, value in cleaned.items():
            setattr(request, name, value)
        request.save(update_fields=list(cleaned))
    return request


def request_raise(*, client: User, request_id: int) -> HiringRequest:
    """Start the clock: the deadline is eight hours from now, and matching starts after commit."""
    from hiring_requests import tasks

    with transaction.atomic():
        request = _lock_own(client, request_id)
        if R.OPEN not in REQUEST_MOVES[request.status]:
            raise RequestStateConflict("This request has been raised already.")
        if request.start_date < timezone.localdate():
            # The stored request is what stands in the way (not this call's input): a state conflict.
            raise RequestStateConflict("The start date has passed; move it (PATCH start_date) before raising.")
        now = timezone.now()
        request.raised_at = now
        request.match_deadline = now + timedelta(hours=settings.MATCH_DEADLINE_HOURS)
        _move(request, R.OPEN, fields=["raised_at", "match_deadline"])
        _record(request, "raised", deadline=request.match_deadline.isoformat())
        tasks.match_request.delay_on_commit(request.pk)
    logger.info("request.raised", extra={"hiring_request_id": request.pk})
    return request


def _withdraw_pending(request: HiringRequest, *, reason: str) -> None:
    """Withdraw the request's pending offers (the caller holds the request's row lock); tell each engineer.

    One guarded bulk update stands in for `_move_invitation` on each offer (PENDING
    -> WITHDRAWN is in INVITATION_MOVES). The offers are locked as they are read: the
    sweep expires an offer without the request's lock, and an offer it expired
    meanwhile must stay expired, and its engineer not be told it was withdrawn too.
    """
    pending = list(
        request.invitations.select_for_update().filter(status=InvitationStatus.PENDING).values_list("pk", "engineer_id")
    )
    Invitation.objects.filter(pk__in=[pk for pk, _ in pending], status=InvitationStatus.PENDING).update(
        status=InvitationStatus.WITHDRAWN, responded_at=timezone.now()
    )
    for invitation_id, engineer_id in pending:
        notify_user(
            user_id=engineer_id,
            event="invitation.withdrawn",
            payload={"invitation_id": invitation_id, "request_id": request.pk, "reason": reason},
        )


def request_cancel(*, client: User, request_id: int) -> HiringRequest:
    with transaction.atomic():
        request = _lock_own(client, request_id)
        if R.CANCELLED not in REQUEST_MOVES[request.status]:
            raise RequestStateConflict(f"A {request.status} request cannot be cancelled.")
        request.closed_at = timezone.now()
        _move(request, R.CANCELLED, fields=["closed_at"])
        _withdraw_pending(request, reason="cancelled")
        # The shortlist too: each engineer on it is told, and their place is no longer open.
        shortlist = list(request.invitations.select_for_update().filter(status=InvitationStatus.ACCEPTED))
        _close_invitations(request, shortlist, reason="the client cancelled the request")
        _record(request, "cancelled")
    return request


def request_close(*, client: User, request_id: int) -> HiringRequest:
    """The work is over: close a hired request."""
    with transaction.atomic():
        request = _lock_own(client, request_id)
        if R.CLOSED not in REQUEST_MOVES[request.status]:
            raise RequestStateConflict("Only a hired request can be closed.")
        request.closed_at = timezone.now()
        _move(request, R.CLOSED, fields=["closed_at"])
        # The work is over: the engineer's hours are theirs again. A guarded bulk update stands in for a move
        # of each engagement: only those ENGAGEMENT_MOVES lets end.
        Engagement.objects.filter(
            request=request, status__in=moves_into(ENGAGEMENT_MOVES, EngagementStatus.ENDED)
        ).update(status=EngagementStatus.ENDED)
        for ended in Engagement.objects.filter(request=request):
            engagement_ended(engagement=ended)  # a last review round, if the engagement had paid work
        _record(request, "closed")
    return request


# --- waves ------------------------------------------------------------------------


def _shortlist_size(request: HiringRequest) -> int:
    return request.invitations.filter(status=InvitationStatus.ACCEPTED).count()


def _answer_window(engineer_time_zone: str, now: datetime) -> tuple[datetime, bool]:
    """When an offer sent `now` expires, and whether it went out of the engineer's working hours.

    An engineer has MATCH_INVITATION_TTL_MINUTES *of working time* to answer:
    9:00-17:00 on weekdays in their own zone. Time outside that does not count, so
    an offer sent at 16:59 runs on into the next working morning, and one sent at
    night starts at 9:00. Nobody is expected to answer in their sleep.
    """
    zone = zoneinfo.ZoneInfo(engineer_time_zone)
    local = now.astimezone(zone)
    left = timedelta(minutes=settings.MATCH_INVITATION_TTL_MINUTES)
    off_hours = not _working(local)
    start = local if not off_hours else _next_morning(local)
    while True:
        end_of_day = start.replace(hour=WORKDAY_END, minute=0, second=0, microsecond=0)
        if start + left <= end_of_day:
            return (start + left).astimezone(UTC), off_hours
        left -= end_of_day - start
        start = _next_morning(end_of_day)


def _working(local: datetime) -> bool:
    return local.weekday() < 5 and WORKDAY_START <= local.hour < WORKDAY_END


def _next_morning(local: datetime) -> datetime:
    """The next weekday 9:00 at or after `local` (same zone), unless `local` is already in working hours."""
    morning = local.replace(hour=WORKDAY_START, minute=0, second=0, microsecond=0)
    if local >= morning:
        morning += timedelta(days=1)
    while morning.weekday() >= 5:
        morning += timedelta(days=1)
    return morning


def _send_wave(request: HiringRequest, now: datetime, *, size: int) -> list[Invitation]:
    """Invite up to `size` of the best engineers not yet invited, within the filters the client agreed to.

    Nobody at all: the pool is empty. The request records it, the client reads it
    on the clock, and staff are told at once (once per widening step).
    """
    criteria = matching.criteria_for(request)
    candidates = matching.rank(criteria, limit=size, request_id=request.pk)
    if candidates:
        fit = capacity.lock_invitable([c.engineer_id for c in candidates], hours_per_week=request.hours_per_week)
        # Those another wave filled up meanwhile wait for the next wave (ranked again, without them).
        candidates = [c for c in candidates if c.engineer_id in fit]
        if not candidates:
            return []
    if not candidates:
        if request.pool_empty_at is None:
            request.pool_empty_at = now
            request.save(update_fields=["pool_empty_at"])
            _record(request, "pool_empty", widening_step=request.widening_step)
            payload = {"request_id": request.pk, "title": request.title, "widening_step": request.widening_step}
            for staff_id in _staff_ids():
                notify_user(user_id=staff_id, event="request.pool_empty", payload=payload)
            notify_user(user_id=request.client_id, event="request.pool_empty", payload=payload)
            logger.warning("request.pool_empty", extra={"hiring_request_id": request.pk, "step": request.widening_step})
        return []
    wave = request.waves_sent + 1
    profiles = dict(
        EngineerProfile.objects.filter(user_id__in=[c.engineer_id for c in candidates]).values_list(
            "user_id", "time_zone"
        )
    )
    invitations = []
    for position, candidate in enumerate(candidates, start=1):
        expires_at, off_hours = _answer_window(profiles[candidate.engineer_id], now)
        invitations.append(
            Invitation(
                request=request,
                engineer_id=candidate.engineer_id,
                wave=wave,
                rank=position,
                score_bp=candidate.score_bp,
                breakdown=candidate.breakdown,
                sent_at=now,
                expires_at=expires_at,
                sent_off_hours=off_hours,
                # The terms of the offer, fixed now: a later profile change does not touch them.
                offered_rate_minor=candidate.breakdown["rate"]["hourly_rate_minor"],
                offered_hours_per_week=request.hours_per_week,
            )
        )
    invitations = Invitation.objects.bulk_create(invitations)
    request.waves_sent, request.pool_empty_at = wave, None
    if request.status == R.OPEN:
        _move(request, R.MATCHING, fields=["waves_sent", "pool_empty_at"])
    else:
        request.save(update_fields=["waves_sent", "pool_empty_at"])
    _record(request, "wave_sent", wave=wave, engineers=[c.engineer_id for c in candidates])
    if wave == 1 and request.raised_at is not None:
        seconds = (now - request.raised_at).total_seconds()
        transaction.on_commit(lambda: metrics.raise_to_first_invitation.observe(max(0.0, seconds)))
    for invitation in invitations:
        notify_user(
            user_id=invitation.engineer_id,
            event="invitation.created",
            payload={
                "invitation_id": invitation.pk,
                "request_id": request.pk,
                "title": request.title,
                "expires_at": invitation.expires_at.isoformat(),
            },
        )
    return invitations


def matching_run(*, request_id: int) -> int:
    """Invite as many engineers as the request needs now. Safe to repeat: returns how many were invited.

    The first wave invites MATCH_WAVE_SIZE. After that, replacements go out as
    soon as the shortlist target can no longer be reached by the engineers who
    accepted plus those still deciding: a decline or an expiry is replaced at
    once, not when the last invitation of the wave times out.
    """
    with transaction.atomic():
        request = HiringRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status not in ACTIVE_STATUSES:
            return 0
        counts = dict.fromkeys(InvitationStatus.values, 0)
        for status in request.invitations.values_list("status", flat=True):
            counts[status] += 1
        missing = settings.MATCH_SHORTLIST_TARGET - counts[InvitationStatus.ACCEPTED] - counts[InvitationStatus.PENDING]
        if missing <= 0:
            return 0
        size = settings.MATCH_WAVE_SIZE if request.waves_sent == 0 else missing
        return len(_send_wave(request, timezone.now(), size=size))


# --- widening, proposed to the client ------------------------------------------------


def widening_propose(*, request_id: int, now: datetime) -> bool:
    """Propose the next widening step to the client, if nobody matches and its time has come.

    Step N may be proposed MATCH_WIDEN_INTERVAL_MINUTES x N after raising, so the
    steps are paced along the deadline; the client accepts or declines
    (`request_widening_answer`). Nothing is relaxed without them. Returns whether
    a step was proposed.
    """
    with transaction.atomic():
        request = HiringRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status not in ACTIVE_STATUSES or request.raised_at is None:
            return False
        step = request.widening_step + 1
        while step <= len(matching.WIDENING_STEPS) and _widening_changes_nothing(request, step):
            step += 1  # nothing to ask the client about: it would relax nothing for this request
        if request.pool_empty_at is None or request.widening_proposed or step > len(matching.WIDENING_STEPS):
            return False
        if now < request.raised_at + timedelta(minutes=settings.MATCH_WIDEN_INTERVAL_MINUTES * step):
            return False
        request.widening_proposed = step
        request.save(update_fields=["widening_proposed"])
        what = matching.WIDENING_STEPS[step - 1]
        _record(request, "widening_proposed", step=step, what=what)
        notify_user(
            user_id=request.client_id,
            event="request.widening_proposed",
            payload={
                "request_id": request.pk,
                "step": step,
                "what": what,
                "change": matching.widening_in_words(request, step),
            },
        )
    return True


def _widening_changes_nothing(request: HiringRequest, step: int) -> bool:
    """A step that relaxes nothing: the time zone at no required overlap, the hourly rate on a fixed budget."""
    applied = request.widenings_applied()
    before, after = (
        matching.criteria_for(request, applied=applied),
        matching.criteria_for(request, applied=applied | {step}),
    )
    return (before.tz_slack, before.max_hourly_rate) == (after.tz_slack, after.max_hourly_rate)


def request_widening_answer(*, client: User, request_id: int, accept: bool) -> HiringRequest:
    """The client accepts or declines the widening step proposed to them; accepting matches again at once."""
    from hiring_requests import tasks

    with transaction.atomic():
        request = _lock_own(client, request_id)
        step = request.widening_proposed
        if not step:
            raise RequestStateConflict("No widening is waiting for your answer.")
        request.widening_proposed, request.widening_step = 0, step
        fields = ["widening_proposed", "widening_step"]
        if accept:
            request.pool_empty_at = None
            fields += ["pool_empty_at"]
            _record(request, "widened", step=step, what=matching.WIDENING_STEPS[step - 1], by="client")
            tasks.match_request.delay_on_commit(request.pk)
        else:
            # Declined steps are never proposed again, and the next one still comes at its time.
            request.widening_declined = [*request.widening_declined, step]
            fields += ["widening_declined"]
            _record(request, "widening_declined", step=step)
        request.save(update_fields=fields)
    return request


# --- staff at the wheel ----------------------------------------------------------------


def request_rematch(*, staff: User, request_id: int) -> int:
    """Staff run matching for a request now (admin). Returns how many were invited."""
    if not staff.is_staff:
        raise Forbidden("Only staff re-run matching.")
    with transaction.atomic():
        request = HiringRequest.objects.select_for_update().get(pk=request_id)
        request.pool_empty_at = None  # a fresh look: if still nobody, staff hear again
        request.save(update_fields=["pool_empty_at"])
        _record(request, "rematched", by=staff.pk)
    return matching_run(request_id=request_id)


def request_extend_deadline(*, staff: User, request_id: int, hours: int, reason: str) -> HiringRequest:
    """Staff move the matching deadline `hours` (1-48) later, with the reason on record; the client is told."""
    if not staff.is_staff:
        raise Forbidden("Only staff extend a deadline.")
    if not 1 <= hours <= 48 or not reason.strip():
        raise InvalidRequest("hours: 1 to 48, and a reason the client will read", field="hours")
    with transaction.atomic():
        request = HiringRequest.objects.select_for_update().get(pk=request_id)
        if request.status not in ACTIVE_STATUSES or request.match_deadline is None:
            raise RequestStateConflict("Only an open request's deadline can move.")
        request.match_deadline += timedelta(hours=hours)
        request.warned_at = request.breached_at = None
        request.save(update_fields=["match_deadline", "warned_at", "breached_at"])
        _record(request, "deadline_extended", hours=hours, reason=reason, by=staff.pk)
        notify_user(
            user_id=request.client_id,
            event="request.deadline_extended",
            payload={"request_id": request.pk, "deadline": request.match_deadline.isoformat(), "reason": reason},
        )
    return request


def invitation_by_hand(*, staff: User, request_id: int, engineer_id: int) -> Invitation:
    """Staff invite one engineer by hand: vetted, in the currency, with free hours, not invited before."""
    if not staff.is_staff:
        raise Forbidden("Only staff invite by hand.")
    with transaction.atomic():
        request = HiringRequest.objects.select_for_update().get(pk=request_id)
        if request.status not in ACTIVE_STATUSES:
            raise RequestStateConflict("Only an open request takes invitations.")
        if not _vetting_current(engineer_id, min_level=request.min_level):
            raise EngineerNotVetted()
        profile = capacity.lock_profile(engineer_id)
        if profile.currency != request.currency:
            raise InvalidRequest(
                f"The engineer quotes in {profile.currency.upper()}, the request is in {request.currency.upper()}."
            )
        if request.invitations.filter(engineer_id=engineer_id).exists():
            raise RequestStateConflict("That engineer was invited to this request already.")
        offer = Invitation(request=request, engineer_id=engineer_id, offered_hours_per_week=request.hours_per_week)
        capacity.check_can_accept(profile, invitation=offer)
        now = timezone.now()
        expires_at, off_hours = _answer_window(profile.time_zone, now)
        offer.wave, offer.rank, offer.score_bp = request.waves_sent, 0, 0
        offer.breakdown = {"by_hand": {"staff_id": staff.pk}}
        offer.sent_at, offer.expires_at, offer.sent_off_hours = now, expires_at, off_hours
        offer.offered_rate_minor = profile.hourly_rate_minor
        offer.save()
        if request.status == R.OPEN:
            _move(request, R.MATCHING, fields=[])
        _record(request, "invited_by_hand", engineer_id=engineer_id, by=staff.pk)
        notify_user(
            user_id=engineer_id,
            event="invitation.created",
            payload={
                "invitation_id": offer.pk,
                "request_id": request.pk,
                "title": request.title,
                "expires_at": expires_at.isoformat(),
            },
        )
    return offer


# --- the clock --------------------------------------------------------------------


def _staff_ids() -> list[int]:
    return list(User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True))


def invitations_expire(*, now: datetime) -> int:
    """Mark every pending invitation past its expiry as expired; tell each engineer."""
    expirable = moves_into(INVITATION_MOVES, InvitationStatus.EXPIRED)  # pending, and only pending
    due = list(
        Invitation.objects.filter(status__in=expirable, expires_at__lte=now).values_list(
            "pk", "engineer_id", "request_id"
        )
    )
    expired = 0
    for invitation_id, engineer_id, request_id in due:
        with transaction.atomic():
            # A compare-and-set update stands in for _move_invitation (no row lock is taken): of two sweeps, or
            # a sweep and the engineer's answer, one wins and the other changes nothing.
            won = Invitation.objects.filter(pk=invitation_id, status__in=expirable).update(
                status=InvitationStatus.EXPIRED
            )
            if won:
                expired += 1
                notify_user(
                    user_id=engineer_id,
                    event="invitation.expired",
                    payload={"invitation_id": invitation_id, "request_id": request_id},
                )
    return expired


def request_check_deadline(*, request_id: int, now: datetime) -> None:
    """Warn staff two hours before an unmet deadline, and mark the breach when it passes."""
    request = HiringRequest.objects.filter(pk=request_id).first()
    if request is None or request.match_deadline is None or request.shortlisted_at is not None:
        return
    payload = {"request_id": request.pk, "title": request.title, "deadline": request.match_deadline.isoformat()}
    warn_at = request.match_deadline - timedelta(minutes=settings.MATCH_WARN_BEFORE_MINUTES)
    with transaction.atomic():
        if now >= warn_at and HiringRequest.objects.filter(pk=request.pk, warned_at=None).update(warned_at=now):
            _record(request, "at_risk")
            for staff_id in _staff_ids():
                notify_user(user_id=staff_id, event="request.at_risk", payload=payload)
            logger.warning("request.at_risk", extra={"hiring_request_id": request.pk})
    with transaction.atomic():
        if now >= request.match_deadline and HiringRequest.objects.filter(pk=request.pk, breached_at=None).update(
            breached_at=now
        ):
            _record(request, "deadline_breached")
            metrics.deadline_breaches.inc()
            for user_id in [*_staff_ids(), request.client_id]:
                notify_user(user_id=user_id, event="request.deadline_breached", payload=payload)
            logger.error("request.deadline_breached", extra={"hiring_request_id": request.pk})


def clock_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic pass over every active request. Each request is handled on its own."""
    now = now or timezone.now()
    expired = invitations_expire(now=now)
    vetting_lapses_sweep()
    invited = 0
    for request_id in HiringRequest.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
        try:
            invited += matching_run(request_id=request_id)
            widening_propose(request_id=request_id, now=now)
            request_check_deadline(request_id=request_id, now=now)
        except Exception:
            # One broken request must not stop the clock for all the others.
            logger.exception("sweep.request_failed", extra={"hiring_request_id": request_id})
    return {"expired": expired, "invited": invited}


# --- answers and hiring -----------------------------------------------------------


def _shortlist_payload(request: HiringRequest, **extra: Any) -> dict[str, Any]:
    accepted = request.invitations.filter(status=InvitationStatus.ACCEPTED).order_by("responded_at", "pk")
    return {
        "request_id": request.pk,
        "shortlist": [
            {"engineer_id": i.engineer_id, "score_bp": i.score_bp, "agreed_rate_minor": i.agreed_rate_minor}
            for i in accepted
        ],
        **extra,
    }


def _vetting_current(engineer_id: int, *, min_level: str | None = None) -> bool:
    """Whether the engineer's vetting is current (at `min_level` or above), reading the record under its row lock.

    The lock orders this check against a revocation (which locks the same row): a
    hire that commits first is seen by the revocation, and one that comes after
    sees the record revoked.
    """
    from vetting.selectors import current_records

    current = current_records().select_for_update().filter(engineer_id=engineer_id)
    if min_level is not None:
        current = current.filter(level__in=matching.levels_at_least(min_level))
    return current.exists()


def _lock_request_of(engineer: User, invitation_id: int) -> HiringRequest | None:
    """The request of the engineer's invitation, row locked (None if the invitation is not theirs).

    Lock order everywhere: the request, then its invitations, then the engineer's vetted record, then
    their profile.
    """
    request_id = Invitation.objects.filter(pk=invitation_id, engineer=engineer).values_list("request_id", flat=True)
    return HiringRequest.objects.select_for_update().filter(pk__in=request_id).first()


def _lock_invitation(engineer: User, invitation_id: int, *, to: InvitationStatus) -> Invitation:
    """The engineer's invitation, row locked, if INVITATION_MOVES lets it become `to` and it has not expired yet."""
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id, engineer=engineer).first()
    if invitation is None:
        raise InvitationNotFound()
    if to not in INVITATION_MOVES[invitation.status]:
        raise InvitationNotPending()
    if invitation.expires_at <= timezone.now():
        # Past its expiry even if the sweep has not marked it yet.
        raise InvitationExpired()
    return invitation


def invitation_accept(*, engineer: User, invitation_id: int, rate_minor: int | None = None) -> Invitation:
    """Join the shortlist on the offer's terms, or at `rate_minor` (minor units an hour) proposed instead.

    The client sees the new shortlist, with the agreed rate, at once. Refused when
    the engineer's vetting is not current (EngineerNotVetted) or the week has no
    room for the offer's hours (EngineerAtCapacity, see hiring_requests.capacity).
    """
    if rate_minor is not None and not 0 < rate_minor <= MAX_RATE_MINOR:
        raise InvalidOffer(f"rate_minor: between 1 and {MAX_RATE_MINOR} minor units an hour", field="rate_minor")
    with transaction.atomic():
        # Lock order: request, invitation, vetted record, profile (matching_run and hiring take them in this order).
        request = _lock_request_of(engineer, invitation_id)
        invitation = _lock_invitation(engineer, invitation_id, to=InvitationStatus.ACCEPTED)
        if request is None or request.status not in ACTIVE_STATUSES:
            raise RequestStateConflict("This request is no longer looking for engineers.")
        if not _vetting_current(engineer.pk, min_level=request.min_level):
            raise EngineerNotVetted(
                f"Your vetting is not current at the {request.min_level} level this request needs, "
                "so you cannot join its shortlist."
            )
        capacity.check_can_accept(capacity.lock_profile(engineer.pk), invitation=invitation)
        now = timezone.now()
        invitation.responded_at = now
        invitation.agreed_rate_minor = invitation.offered_rate_minor if rate_minor is None else rate_minor
        _move_invitation(invitation, InvitationStatus.ACCEPTED, fields=["responded_at", "agreed_rate_minor"])
        if request.status != R.SHORTLISTED:
            request.shortlisted_at = request.shortlisted_at or now
            _move(request, R.SHORTLISTED, fields=["shortlisted_at"])
        _record(
            request,
            "accepted",
            engineer_id=engineer.pk,
            agreed_rate_minor=invitation.agreed_rate_minor,
            proposed=invitation.agreed_rate_minor != invitation.offered_rate_minor,
        )
        conversation = conversation_open(request=request, engineer_id=engineer.pk)
        system_message_post(
            conversation_id=conversation.pk,
            payload={"event": "invitation.accepted", "engineer_id": engineer.pk, "request_id": request.pk},
        )
        notify_user(user_id=request.client_id, event="shortlist.changed", payload=_shortlist_payload(request))
    return invitation


def invitation_decline(*, engineer: User, invitation_id: int, reason: str) -> Invitation:
    from hiring_requests import tasks

    if not reason.strip():
        raise InvalidRequest("reason: say why you decline; it helps us match better", field="reason")
    with transaction.atomic():
        # Lock order: request, then invitation, as accepting, cancelling and hiring take them. Holding only the
        # offer, the event row below would wait for the request (its foreign key) while a cancel holding the
        # request waited for the offer: a deadlock.
        request = _lock_request_of(engineer, invitation_id)
        invitation = _lock_invitation(engineer, invitation_id, to=InvitationStatus.DECLINED)
        if request is not None:
            invitation.request = request  # the locked row, not a second read
        invitation.responded_at, invitation.decline_reason = timezone.now(), reason
        _move_invitation(invitation, InvitationStatus.DECLINED, fields=["responded_at", "decline_reason"])
        _record(invitation.request, "declined", engineer_id=engineer.pk)
        # A replacement goes out at once if the shortlist target can no longer be reached.
        tasks.match_request.delay_on_commit(invitation.request_id)
    return invitation


def invitation_withdraw(*, engineer: User, invitation_id: int, reason: str) -> Invitation:
    """The engineer leaves a shortlist (or takes back an accepted offer); the client is told why."""
    if not reason.strip():
        raise InvalidRequest("reason: say why you leave the shortlist", field="reason")
    with transaction.atomic():
        request = _lock_request_of(engineer, invitation_id)
        invitation = Invitation.objects.select_for_update().filter(pk=invitation_id, engineer=engineer).first()
        if invitation is None or request is None:
            raise InvitationNotFound()
        if invitation.status != InvitationStatus.ACCEPTED or request.status not in ACTIVE_STATUSES:
            raise InvitationNotPending("Only a place on an open shortlist can be given up.")
        _close_invitations(request, [invitation], reason=f"the engineer left the shortlist: {reason}")
    return invitation


def _close_invitations(
    request: HiringRequest,
    invitations: list[Invitation],
    *,
    reason: str,
    status: InvitationStatus = InvitationStatus.WITHDRAWN,
) -> None:
    """Close offers (pending or accepted) with a reason both sides are shown; the client sees the new shortlist."""
    now = timezone.now()
    for invitation in invitations:
        was = invitation.status
        invitation.closed_reason, invitation.responded_at = reason, now
        _move_invitation(invitation, status, fields=["closed_reason", "responded_at"])
        _record(request, f"invitation_{status}", engineer_id=invitation.engineer_id, was=was, reason=reason)
        notify_user(
            user_id=invitation.engineer_id,
            # Not chosen: the request was filled by someone else.
            event="request.filled" if status == InvitationStatus.NOT_CHOSEN else "invitation.withdrawn",
            payload={"invitation_id": invitation.pk, "request_id": request.pk, "reason": reason},
        )
    if request.status == R.SHORTLISTED and not request.invitations.filter(status=InvitationStatus.ACCEPTED).exists():
        # Nobody left on the shortlist: the promise is not met after all, and matching looks again at once.
        from hiring_requests import tasks

        request.shortlisted_at = None
        _move(request, R.MATCHING, fields=["shortlisted_at"])
        tasks.match_request.delay_on_commit(request.pk)
    if any(i.status == status for i in invitations) and request.status in ACTIVE_STATUSES:
        notify_user(
            user_id=request.client_id, event="shortlist.changed", payload=_shortlist_payload(request, reason=reason)
        )


def engineer_vetting_lapsed(*, engineer_id: int, reason: str) -> int:
    """Take an engineer whose vetting ended off every open offer and shortlist; returns how many.

    `reason` is said to the client and to the engineer ("vetting revoked: ...",
    "vetting expired on 2026-11-30"). Called by vetting when a record is revoked,
    and by the clock sweep for records that expired.
    """
    closed = 0
    held = (
        Invitation.objects.filter(
            engineer_id=engineer_id, status__in=[InvitationStatus.PENDING, InvitationStatus.ACCEPTED]
        )
        .filter(request__status__in=ACTIVE_STATUSES)
        .values_list("request_id", flat=True)
        .distinct()
    )
    for request_id in sorted(held):
        with transaction.atomic():
            request = HiringRequest.objects.select_for_update().get(pk=request_id)
            invitations = list(
                Invitation.objects.select_for_update().filter(
                    request=request, engineer_id=engineer_id, status__in=HOLDING_STATUSES
                )
            )
            _close_invitations(request, invitations, reason=reason)
            closed += len(invitations)
    if closed:
        logger.info("invitations.vetting_lapsed", extra={"engineer_id": engineer_id, "closed": closed})
    return closed


def vetting_lapses_sweep() -> int:
    """Close the offers of engineers whose vetting expired since they were invited (the clock sweep)."""
    from vetting.selectors import current_records

    lapsed = (
        Invitation.objects.filter(status__in=HOLDING_STATUSES, request__status__in=ACTIVE_STATUSES)
        .exclude(engineer_id__in=current_records().values("engineer_id"))
        .values_list("engineer_id", flat=True)
        .distinct()
    )
    return sum(
        engineer_vetting_lapsed(engineer_id=engineer_id, reason="the engineer's vetting expired")
        for engineer_id in sorted(lapsed)
    )


def request_hire(*, client: User, request_id: int, engineer_id: int, accept_over_budget: bool = False) -> Engagement:
    """Hire one shortlisted engineer on the terms they accepted; everyone else on the shortlist is told.

    An hourly engagement's rate is the offer's agreed rate, never the profile's
    rate of the moment. A rate above the hourly budget needs `accept_over_budget`
    (OverBudget otherwise). Refused when the engineer's vetting lapsed
    (EngineerNotVetted: they leave the shortlist, and both sides are told why) or
    their week is full (EngineerAtCapacity, decided under a lock on their profile row).
    """
    with transaction.atomic():
        request = _lock_own(client, request_id)
        if R.HIRED not in REQUEST_MOVES[request.status]:
            raise RequestStateConflict(f"A {request.status} request cannot hire.")
        chosen = (
            Invitation.objects.select_for_update()
            .filter(request=request, engineer_id=engineer_id, status=InvitationStatus.ACCEPTED)
            .first()
        )
        if chosen is None:
            raise NotShortlisted()
        lapsed = not _vetting_current(engineer_id, min_level=request.min_level)
        if lapsed:
            # Committed with this transaction; the refusal is raised after it.
            _close_invitations(
                request,
                [chosen],
                reason=f"the engineer's vetting is no longer current at the {request.min_level} level",
            )
        else:
            engagement = _hire(request, chosen, accept_over_budget=accept_over_budget)
    if lapsed:
        raise EngineerNotVetted()
    logger.info("request.hired", extra={"hiring_request_id": request.pk, "engagement_id": engagement.pk})
    return engagement


def _hire(request: HiringRequest, chosen: Invitation, *, accept_over_budget: bool) -> Engagement:
    engineer_id = chosen.engineer_id
    if not payouts_enabled(engineer_id=engineer_id):
        raise PayoutsNotEnabled()
    hourly = request.budget_kind == BudgetKind.HOURLY
    rate = chosen.agreed_rate_minor or chosen.offered_rate_minor
    # A fixed budget is a total: the agreed rate over the expected hours is what the work costs.
    cost = rate if hourly else rate * request.hours_per_week * request.expected_weeks
    if cost > request.budget_minor and not accept_over_budget:
        what = "an hour" if hourly else f"for {request.hours_per_week * request.expected_weeks} hours"
        raise OverBudget(
            f"The agreed terms come to {format_money(cost, request.currency)} {what}, above your budget of "
            f"{format_money(request.budget_minor, request.currency)}; hire with accept_over_budget to agree to it."
        )
    capacity.check_can_hire(capacity.lock_profile(engineer_id), hours_per_week=request.hours_per_week)
    engagement = Engagement.objects.create(
        request=request,
        client_id=request.client_id,
        engineer_id=engineer_id,
        rate_kind=request.budget_kind,
        rate_minor=rate if hourly else max(request.budget_minor, cost),
        currency=request.currency,
        hours_per_week=request.hours_per_week,
    )
    if hourly:
        # Starts when the client's card is saved for off-session charges (payments.services.hourly).
        billing_open(engagement)
    _move(request, R.HIRED, fields=[])
    _withdraw_pending(request, reason="filled")
    _record(request, "hired", engineer_id=engineer_id, engagement_id=engagement.pk, rate_minor=engagement.rate_minor)
    others = list(
        Invitation.objects.select_for_update()
        .filter(request=request, status=InvitationStatus.ACCEPTED)
        .exclude(engineer_id=engineer_id)
    )
    _close_invitations(request, others, reason="the client hired another engineer", status=InvitationStatus.NOT_CHOSEN)
    notify_user(
        user_id=engineer_id,
        event="engagement.created",
        payload={"request_id": request.pk, "engagement_id": engagement.pk},
    )
    hired_conversation_id = conversation_id_between(request_id=request.pk, engineer_id=engineer_id)
    if hired_conversation_id is not None:
        system_message_post(
            conversation_id=hired_conversation_id,
            payload={"event": "hired", "engineer_id": engineer_id, "engagement_id": engagement.pk},
        )
    return engagement
