import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from accounts.models import User
from marketplace.auth import api_auth, current_user, staff_user
from marketplace.db import atomic_phase
from marketplace.idempotency import accepts_idempotency_key
from marketplace.schemas import NoteIn, ReasonIn
from payments import selectors, services
from payments.errors import EngagementNotFound, MilestoneNotFound, PaymentsUnavailable
from payments.models import Milestone, PayoutAccount
from payments.schemas import (
    FundingOut,
    MilestoneIn,
    MilestoneOut,
    OnboardingIn,
    OnboardingOut,
    PayoutAccountOut,
    SettleIn,
    WebhookOut,
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


@router.post(
    "/engagements/{engagement_id}/milestones", response={201: MilestoneOut}, summary="Add a milestone (client)"
)
@accepts_idempotency_key
def milestone_create(request: HttpRequest, engagement_id: int, payload: MilestoneIn) -> Status[Milestone]:
    milestone = services.milestone_create(
        client=current_user(request), engagement_id=engagement_id, title=payload.title,
        amount_minor=payload.amount_minor, due_date=payload.due_date,
    )  # fmt: skip
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


# Stripe's endpoint, not a client operation: kept out of the client-facing document (docs/payments.md).
@router.post(
    "/stripe/webhook", response=WebhookOut, auth=None, include_in_schema=False, summary="Stripe webhooks (signed)"
)
def stripe_webhook(request: HttpRequest) -> dict[str, bool]:
    # Stored first, processed by a task: Stripe gets its 2xx at once.
    _, created = services.stripe_event_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    return {"received": True, "duplicate": not created}
