import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.models import User
from marketplace.auth import api_auth, current_user, staff_user
from marketplace.db import atomic_phase
from marketplace.errors import EngagementNotFound
from marketplace.idempotency import accepts_idempotency_key
from marketplace.schemas import NoteIn, ReasonIn
from payments import selectors, services
from payments.errors import MilestoneNotFound, PaymentsUnavailable
from payments.models import Milestone, PayoutAccount, TimeEntry, Timesheet, WeeklyCap
from payments.schemas import (
    BillingOut,
    CardSetupOut,
    EngagementQuery,
    FundingOut,
    MilestoneIn,
    MilestoneOut,
    MyEngagementOut,
    OnboardingIn,
    OnboardingOut,
    PayNowOut,
    PayoutAccountOut,
    SettleIn,
    TimeEntryIn,
    TimeEntryOut,
    TimeEntryPatch,
    TimesheetDetailOut,
    TimesheetDisputeIn,
    TimesheetOut,
    WebhookOut,
    WeeklyCapIn,
    WeeklyCapOut,
)

router = Router(tags=["payments"], auth=api_auth)


async def within_deadline[T](operation: Awaitable[T]) -> T:
    """The whole operation, every Stripe call in it, answers within STRIPE_DEADLINE_SECONDS.

    Past it the client gets 503 with Retry-After; the step itself is shielded and
    finishes on its own (or the sweep finishes it), so looking again later shows it.
    """
    try:
        async with asyncio.timeout(settings.STRIPE_DEADLINE_SECONDS):
            return await operation
    except TimeoutError:
        raise PaymentsUnavailable(
            "The payment operation is still in progress and will complete on its own; look at the milestone again "
            "shortly.",
            retry_after=5,
        ) from None


def _visible(request: HttpRequest, milestone_id: int) -> Milestone:
    milestone = selectors.milestone_for(user=current_user(request), milestone_id=milestone_id)
    if milestone is None:
        raise MilestoneNotFound()
    return milestone


async def _money_step(
    request: HttpRequest, milestone_id: int, run: Callable[[User], Awaitable[Milestone]], schema: Any
) -> Status[Any]:
    """A money step on a milestone the caller may see, answered as `schema` within the Stripe deadline.

    Async: the view holds no database connection while Stripe answers (each
    database step is an `atomic_phase` that gives its connection back).
    """
    user = current_user(request)
    await atomic_phase(_visible)(request, milestone_id)
    return Status(200, schema.model_validate(await within_deadline(run(user))).model_dump(mode="json"))


@router.post(
    "/payout-account/onboarding", response=OnboardingOut, summary="Start or resume payout onboarding (engineers)"
)
async def payout_onboarding(request: HttpRequest, payload: OnboardingIn) -> dict[str, str]:
    url = await within_deadline(
        services.apayout_onboarding_start(engineer=current_user(request), return_url=payload.return_url)
    )
    return {"url": url}


@router.get("/payout-account", response={200: PayoutAccountOut, 204: None}, summary="My payout account")
def payout_account(request: HttpRequest) -> PayoutAccount | Status[None]:
    account = selectors.payout_account_of(engineer=current_user(request))
    return account if account is not None else Status(204, None)


@router.get(
    "/engagements",
    response=list[MyEngagementOut],
    summary="My engagements, as client or engineer, with their milestones, newest first",
)
@paginate
def engagement_list(request: HttpRequest, filters: Query[EngagementQuery]) -> Any:
    """The engagements you are in, newest first (`created_at`, then `id`), each with its milestones oldest first.

    Each item: `id`, `request_id`, `request_title`, `my_role`, `counterpart_id`, `counterpart_name`,
    `rate_kind`, `rate_minor`, `currency`, `hours_per_week`, `status`, `created_at`, `billing_status`
    (hourly only, else null) and `milestones` (`id`, `title`, `amount_minor`, `currency`, `status`,
    `due_date`). Money is an integer in minor units of `currency` (`rate_minor: 4000` is 40.00).
    Staff see only engagements they are in, as everyone does. `?status=active|ended` filters.
    """
    return selectors.engagements_of(user=current_user(request), status=filters.status)


@router.get("/engagements/{engagement_id}", response=MyEngagementOut, summary="An engagement with its milestones")
def engagement_detail(request: HttpRequest, engagement_id: int) -> object:
    """One engagement, shaped as in `GET /api/payments/engagements`, for its client and engineer (and staff).

    Anyone else gets `404 engagement_not_found`, as for an engagement that does not exist.
    """
    engagement = selectors.engagement_for(user=current_user(request), engagement_id=engagement_id)
    if engagement is None:
        raise EngagementNotFound()
    return engagement


@router.post(
    "/engagements/{engagement_id}/milestones", response={201: MilestoneOut}, summary="Add a milestone (client)"
)
@accepts_idempotency_key
def milestone_create(request: HttpRequest, engagement_id: int, payload: MilestoneIn) -> Status[Milestone]:
    milestone = services.milestone_create(
        client=current_user(request),
        engagement_id=engagement_id,
        title=payload.title,
        amount_minor=payload.amount_minor,
        due_date=payload.due_date,
    )
    return Status(201, milestone)


@router.get(
    "/engagements/{engagement_id}/milestones",
    response=list[MilestoneOut],
    summary="An engagement's milestones, oldest first",
)
@paginate
def milestone_list(request: HttpRequest, engagement_id: int) -> Any:
    milestones = selectors.milestones_of(user=current_user(request), engagement_id=engagement_id)
    if milestones is None:
        raise EngagementNotFound()
    return milestones


@router.get("/milestones/{milestone_id}", response=MilestoneOut, summary="A milestone")
def milestone_detail(request: HttpRequest, milestone_id: int) -> Milestone:
    return _visible(request, milestone_id)


@router.post("/milestones/{milestone_id}/fund", response={200: FundingOut}, summary="Fund into escrow (client)")
@accepts_idempotency_key
async def milestone_fund(request: HttpRequest, milestone_id: int) -> Status[Any]:
    return await _money_step(
        request,
        milestone_id,
        lambda user: services.amilestone_fund(client=user, milestone_id=milestone_id),
        FundingOut,
    )


@router.post("/milestones/{milestone_id}/submit", response=MilestoneOut, summary="Submit the work (engineer)")
@accepts_idempotency_key
def milestone_submit(request: HttpRequest, milestone_id: int, payload: NoteIn) -> Milestone:
    return services.milestone_submit(engineer=current_user(request), milestone_id=milestone_id, note=payload.note)


@router.post("/milestones/{milestone_id}/request-changes", response=MilestoneOut, summary="Ask for changes (client)")
@accepts_idempotency_key
def milestone_request_changes(request: HttpRequest, milestone_id: int, payload: ReasonIn) -> Milestone:
    return services.milestone_request_changes(
        client=current_user(request), milestone_id=milestone_id, note=payload.reason
    )


@router.post("/milestones/{milestone_id}/approve", response={200: MilestoneOut}, summary="Approve and release (client)")
@accepts_idempotency_key
async def milestone_approve(request: HttpRequest, milestone_id: int) -> Status[Any]:
    return await _money_step(
        request,
        milestone_id,
        lambda user: services.amilestone_approve(client=user, milestone_id=milestone_id),
        MilestoneOut,
    )


@router.post(
    "/milestones/{milestone_id}/refund",
    response={200: MilestoneOut},
    summary="Refund an unsubmitted milestone (client)",
)
@accepts_idempotency_key
async def milestone_refund(request: HttpRequest, milestone_id: int) -> Status[Any]:
    return await _money_step(
        request,
        milestone_id,
        lambda user: services.amilestone_refund(client=user, milestone_id=milestone_id),
        MilestoneOut,
    )


@router.post(
    "/milestones/{milestone_id}/cancel",
    response={200: MilestoneOut},
    summary="Cancel an unfunded milestone; its PaymentIntent is cancelled too (client)",
)
@accepts_idempotency_key
async def milestone_cancel(request: HttpRequest, milestone_id: int) -> Status[Any]:
    return await _money_step(
        request,
        milestone_id,
        lambda user: services.amilestone_cancel(client=user, milestone_id=milestone_id),
        MilestoneOut,
    )


@router.post("/milestones/{milestone_id}/dispute", response=MilestoneOut, summary="Open a dispute (client or engineer)")
@accepts_idempotency_key
def milestone_dispute(request: HttpRequest, milestone_id: int, payload: ReasonIn) -> Milestone:
    return services.milestone_dispute(user=current_user(request), milestone_id=milestone_id, reason=payload.reason)


@router.post("/staff/milestones/{milestone_id}/settle", response=MilestoneOut, summary="Settle a dispute (staff)")
@accepts_idempotency_key
async def milestone_settle(request: HttpRequest, milestone_id: int, payload: SettleIn) -> Milestone:
    return await within_deadline(
        services.amilestone_settle(
            staff=staff_user(request), milestone_id=milestone_id, engineer_share_minor=payload.engineer_share_minor
        )
    )


# --- hourly engagements: card, cap, time, review, billing -----------------------------------


def _billing_out(engagement_id: int, user: User) -> dict[str, Any]:
    billing = selectors.billing_for(user=user, engagement_id=engagement_id)
    if billing is None:
        raise EngagementNotFound()
    this_week = services.week_start_of(timezone.now())
    return {
        "engagement_id": engagement_id,
        "status": billing.status,
        "card_brand": billing.card_brand,
        "card_last4": billing.card_last4,
        "started_at": billing.started_at,
        "paused_at": billing.paused_at,
        "hours_this_week": services.weekly_cap_hours(billing.engagement, this_week),
        "hours_next_week": services.weekly_cap_hours(billing.engagement, this_week + timedelta(days=7)),
    }


@router.get("/engagements/{engagement_id}/billing", response=BillingOut, summary="An hourly engagement's billing")
def billing_detail(request: HttpRequest, engagement_id: int) -> dict[str, Any]:
    return _billing_out(engagement_id, current_user(request))


@router.post(
    "/engagements/{engagement_id}/payment-method",
    response={200: CardSetupOut},
    summary="Save a card for an hourly engagement, or replace it (client)",
)
@accepts_idempotency_key
async def payment_method_setup(request: HttpRequest, engagement_id: int) -> Status[Any]:
    setup = await within_deadline(
        services.apayment_method_setup(client=current_user(request), engagement_id=engagement_id)
    )
    return Status(200, CardSetupOut.model_validate(setup, from_attributes=True).model_dump(mode="json"))


@router.put(
    "/engagements/{engagement_id}/weekly-cap",
    response=WeeklyCapOut,
    summary="Change the weekly hours from next Monday (client)",
)
def weekly_cap_set(request: HttpRequest, engagement_id: int, payload: WeeklyCapIn) -> WeeklyCap:
    return services.weekly_cap_set(client=current_user(request), engagement_id=engagement_id, hours=payload.hours)


def _entry_out(entry: TimeEntry, zone: str) -> dict[str, Any]:
    local = entry.started_at.astimezone(ZoneInfo(zone))
    return {
        "id": entry.pk,
        "timesheet_id": entry.timesheet_id,
        "started_at": entry.started_at,
        "minutes": entry.minutes,
        "note": entry.note,
        "local_date": local.date(),
        "time_zone": zone,
        "disputed": entry.disputed,
        "dispute_reason": entry.dispute_reason,
    }


@router.post("/engagements/{engagement_id}/time-entries", response={201: TimeEntryOut}, summary="Log time (engineer)")
@accepts_idempotency_key
def time_entry_log(request: HttpRequest, engagement_id: int, payload: TimeEntryIn) -> Status[dict[str, Any]]:
    engineer = current_user(request)
    entry = services.time_entry_log(
        engineer=engineer,
        engagement_id=engagement_id,
        started_at=payload.started_at,
        minutes=payload.minutes,
        note=payload.note,
    )
    return Status(201, _entry_out(entry, selectors.engineer_zone(entry.timesheet.engagement.engineer_id)))


@router.patch("/time-entries/{entry_id}", response=TimeEntryOut, summary="Change a time entry (engineer)")
def time_entry_edit(request: HttpRequest, entry_id: int, payload: TimeEntryPatch) -> dict[str, Any]:
    entry = services.time_entry_edit(
        engineer=current_user(request),
        entry_id=entry_id,
        started_at=payload.started_at,
        minutes=payload.minutes,
        note=payload.note,
    )
    return _entry_out(entry, selectors.engineer_zone(entry.timesheet.engagement.engineer_id))


@router.delete("/time-entries/{entry_id}", response={204: None}, summary="Delete a time entry (engineer)")
def time_entry_delete(request: HttpRequest, entry_id: int) -> Status[None]:
    services.time_entry_delete(engineer=current_user(request), entry_id=entry_id)
    return Status(204, None)


@router.get(
    "/engagements/{engagement_id}/timesheets",
    response=list[TimesheetOut],
    summary="An hourly engagement's weeks, newest first",
)
@paginate
def timesheet_list(request: HttpRequest, engagement_id: int) -> Any:
    timesheets = selectors.timesheets_of(user=current_user(request), engagement_id=engagement_id)
    if timesheets is None:
        raise EngagementNotFound()
    return timesheets


@router.get("/timesheets/{timesheet_id}", response=TimesheetDetailOut, summary="A week with its entries")
def timesheet_detail(request: HttpRequest, timesheet_id: int) -> dict[str, Any]:
    timesheet = selectors.timesheet_for(user=current_user(request), timesheet_id=timesheet_id)
    zone = selectors.engineer_zone(timesheet.engagement.engineer_id)
    body = TimesheetOut.model_validate(timesheet, from_attributes=True).model_dump()
    return {**body, "entries": [_entry_out(entry, zone) for entry in timesheet.entries.all()]}


async def _timesheet_step(request: HttpRequest, timesheet_id: int, run: Callable[[User], Awaitable[Any]]) -> Any:
    user = current_user(request)
    await atomic_phase(selectors.timesheet_for)(user=user, timesheet_id=timesheet_id)
    return await within_deadline(run(user))


@router.post(
    "/timesheets/{timesheet_id}/approve", response=TimesheetOut, summary="Approve a week; it is charged (client)"
)
@accepts_idempotency_key
async def timesheet_approve(request: HttpRequest, timesheet_id: int) -> Any:
    timesheet = await _timesheet_step(
        request, timesheet_id, lambda user: services.atimesheet_approve(client=user, timesheet_id=timesheet_id)
    )
    return TimesheetOut.model_validate(timesheet, from_attributes=True).model_dump(mode="json")


@router.post(
    "/timesheets/{timesheet_id}/pay",
    response=PayNowOut,
    summary="Fix a failed charge: charge again now, or confirm the payment in Stripe.js (client)",
)
@accepts_idempotency_key
async def timesheet_pay_now(request: HttpRequest, timesheet_id: int) -> Any:
    paid = await _timesheet_step(
        request, timesheet_id, lambda user: services.atimesheet_pay_now(client=user, timesheet_id=timesheet_id)
    )
    body = TimesheetOut.model_validate(paid.timesheet, from_attributes=True).model_dump(mode="json")
    return {"timesheet": body, "client_secret": paid.client_secret}


@router.post("/timesheets/{timesheet_id}/dispute", response=TimesheetOut, summary="Dispute entries of a week (client)")
@accepts_idempotency_key
def timesheet_dispute(request: HttpRequest, timesheet_id: int, payload: TimesheetDisputeIn) -> Timesheet:
    return services.timesheet_dispute(
        client=current_user(request),
        timesheet_id=timesheet_id,
        entries=[(item.entry_id, item.reason) for item in payload.entries],
    )


@router.post("/staff/timesheets/{timesheet_id}/settle", response=TimesheetOut, summary="Settle a disputed week (staff)")
@accepts_idempotency_key
async def timesheet_settle(request: HttpRequest, timesheet_id: int, payload: SettleIn) -> Any:
    staff = staff_user(request)
    settled = await atomic_phase(services.timesheet_settle)(
        staff=staff, timesheet_id=timesheet_id, engineer_share_minor=payload.engineer_share_minor
    )
    if settled.status == "approved":
        settled = await within_deadline(services.atimesheet_charge(timesheet_id=timesheet_id))
    return TimesheetOut.model_validate(settled, from_attributes=True).model_dump(mode="json")


# Stripe's endpoint, not a client operation: kept out of the client-facing document (docs/payments.md).
@router.post(
    "/stripe/webhook", response=WebhookOut, auth=None, include_in_schema=False, summary="Stripe webhooks (signed)"
)
def stripe_webhook(request: HttpRequest) -> dict[str, bool]:
    # Stored first, processed by a task: Stripe gets its 2xx at once.
    created = services.stripe_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    return {"received": True, "duplicate": not created}
