from datetime import date, datetime

from ninja import Schema
from pydantic import Field

from accounts.schemas import StrictIn


class OnboardingIn(StrictIn):
    return_url: str = Field(default="http://127.0.0.1:8000/", max_length=500)


class OnboardingOut(Schema):
    url: str


class PayoutAccountOut(Schema):
    stripe_account_id: str
    payouts_enabled: bool


class MilestoneIn(StrictIn):
    title: str = Field(min_length=3, max_length=200)
    # Stripe's per-currency limits are checked by the service (payments.limits): amount_out_of_range.
    amount_minor: int = Field(gt=0)
    due_date: date


class MilestoneOut(Schema):
    id: int
    engagement_id: int
    title: str
    amount_minor: int
    currency: str
    due_date: date
    status: str
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


class NoteIn(StrictIn):
    note: str = Field(default="", max_length=5_000)


class ReasonIn(StrictIn):
    reason: str = Field(min_length=1, max_length=5_000)


class SettleIn(StrictIn):
    engineer_share_minor: int = Field(ge=0)


class WebhookOut(Schema):
    received: bool
    duplicate: bool
