from datetime import date, datetime

from ninja import Schema
from pydantic import Field

from marketplace.schemas import CurrencyCode, MinorUnits, PositiveMinorUnits, ReturnUrl, SaneDate, StrictIn
from payments.models import MilestoneStatus


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


class MilestoneOut(Schema):
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


class FundingOut(MilestoneOut):
    client_secret: str


class SettleIn(StrictIn):
    engineer_share_minor: MinorUnits


class WebhookOut(Schema):
    received: bool
    duplicate: bool
