from datetime import date, datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field, StrictInt

from hiring_requests.engagements import BudgetKind, EngagementStatus
from marketplace.schemas import (
    CurrencyCode,
    Id,
    MinorUnits,
    PatchIn,
    PositiveMinorUnits,
    QueryIn,
    ReturnUrl,
    RowOut,
    SaneDate,
    SaneMoment,
    StrictIn,
)
from payments.models import BillingStatus, MilestoneStatus, TimesheetStatus


class OnboardingIn(StrictIn):
    # Where Stripe sends the engineer back: http(s), on a host this service answers to (RETURN_URL_HOSTS).
    return_url: ReturnUrl = "http://127.0.0.1:8000/"


class OnboardingOut(Schema):
    url: str


class PayoutAccountOut(Schema):
    stripe_account_id: str
    payouts_enabled: bool


class MilestoneIn(StrictIn):
    title: str = Field(min_length=3, max_length=200)
    # Stripe's per-currency limits are checked by the service (payments.limits): amount_out_of_range.
    amount_minor: PositiveMinorUnits
    due_date: SaneDate


class MilestoneOut(RowOut):
    id: int
    engagement_id: int
    title: str
    amount_minor: int
    currency: CurrencyCode
    due_date: date
    status: MilestoneStatus
    payment_intent_id: str
    transfer_id: str
    refund_id: str
    funded_at: datetime | None
    submitted_at: datetime | None
    review_deadline: datetime | None
    change_rounds: int
    released_at: datetime | None


class EngagementMilestoneOut(Schema):
    """A milestone as a list of engagements shows it; `GET /api/payments/milestones/{id}` has the rest."""

    id: int
    title: str
    # Integer minor units of `currency` (5000 is 50.00).
    amount_minor: int
    currency: CurrencyCode
    status: MilestoneStatus
    due_date: date


class MyEngagementOut(Schema):
    """An engagement as its client or engineer sees it, with its milestones (oldest first)."""

    id: int
    request_id: int
    request_title: str
    my_role: Literal["client", "engineer", "staff"] = Field(
        description='Your part in it; "staff" for staff reading an engagement they are not in.'
    )
    counterpart_id: int = Field(description="The other party: the engineer for the client, the client otherwise.")
    counterpart_name: str = Field(description='Their full name, or "Client" / "Engineer" when they have not set one.')
    rate_kind: BudgetKind
    # Integer minor units of `currency`: per hour when rate_kind is "hourly", the agreed total when "fixed".
    rate_minor: int
    currency: CurrencyCode
    hours_per_week: int
    status: EngagementStatus
    created_at: datetime
    billing_status: BillingStatus | None = Field(
        default=None,
        description="Hourly engagements only (GET /api/payments/engagements/{id}/billing); null for fixed ones.",
    )
    milestones: list[EngagementMilestoneOut]

    @staticmethod
    def resolve_request_title(obj: Any) -> str:
        return str(obj.request.title)

    @staticmethod
    def resolve_billing_status(obj: Any) -> str | None:
        billing = getattr(obj, "billing", None) if obj.rate_kind == BudgetKind.HOURLY else None
        return billing.status if billing is not None else None


class EngagementQuery(QueryIn):
    status: EngagementStatus | None = Field(default=None, description="Only engagements in this status.")


class FundingOut(MilestoneOut):
    client_secret: str


class SettleIn(StrictIn):
    engineer_share_minor: MinorUnits


class WebhookOut(Schema):
    received: bool
    duplicate: bool


# --- hourly engagements ----------------------------------------------------------------------


class CardSetupOut(Schema):
    """Hand `client_secret` to Stripe.js (`stripe.confirmCardSetup`); `setup_intent.succeeded` starts the engagement."""

    engagement_id: int
    setup_intent_id: str
    client_secret: str
    billing_status: BillingStatus


class BillingOut(Schema):
    engagement_id: int
    status: BillingStatus
    card_brand: str
    card_last4: str
    started_at: datetime | None
    paused_at: datetime | None
    # The weekly cap in hours this week and from next Monday (UTC).
    hours_this_week: int
    hours_next_week: int


class WeeklyCapIn(StrictIn):
    hours: StrictInt = Field(ge=1, le=168)


class WeeklyCapOut(Schema):
    engagement_id: int
    hours: int
    applies_from: date


class TimeEntryIn(StrictIn):
    # When the work started, with its UTC offset (2026-12-01T09:00:00+01:00); the week is decided in UTC.
    started_at: SaneMoment
    minutes: StrictInt = Field(ge=1, le=1440)
    note: str = Field(min_length=1, max_length=500)


class TimeEntryPatch(PatchIn):
    started_at: SaneMoment | None = None
    minutes: StrictInt | None = Field(default=None, ge=1, le=1440)
    note: str | None = Field(default=None, min_length=1, max_length=500)


class TimeEntryOut(Schema):
    id: int
    timesheet_id: int
    started_at: datetime
    minutes: int
    note: str
    # The day the work started in the engineer's own time zone, and that zone (IANA).
    local_date: date
    time_zone: str
    disputed: bool
    dispute_reason: str


class TimesheetOut(Schema):
    id: int
    engagement_id: int
    # The week runs from Monday 00:00 UTC of week_start to the next Monday 00:00 UTC.
    week_start: date
    status: TimesheetStatus
    minutes: int
    carried_minutes: int
    disputed_minutes: int
    rate_minor: int
    amount_minor: int
    currency: CurrencyCode
    submitted_at: datetime | None
    review_deadline: datetime | None
    approved_at: datetime | None
    charge_failures: int
    next_charge_at: datetime | None
    failure_code: str
    failure_message: str
    payment_intent_id: str
    transfer_id: str
    charged_at: datetime | None
    paid_at: datetime | None


class TimesheetDetailOut(TimesheetOut):
    entries: list[TimeEntryOut]


class DisputedEntryIn(StrictIn):
    entry_id: Id
    reason: str = Field(min_length=1, max_length=500)


class TimesheetDisputeIn(StrictIn):
    entries: list[DisputedEntryIn] = Field(min_length=1, max_length=200)


class PayNowOut(Schema):
    timesheet: TimesheetOut
    # Set when Stripe needs the cardholder: confirm with Stripe.js (`stripe.confirmCardPayment`).
    client_secret: str
