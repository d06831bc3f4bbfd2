from datetime import date, datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field, StrictBool, StrictInt

from hiring_requests.models import BudgetKind, EngagementStatus, InvitationStatus, RequestStatus
from marketplace.levels import Level
from marketplace.schemas import (
    Currency,
    CurrencyCode,
    Id,
    PatchIn,
    PositiveMinorUnits,
    RowOut,
    SaneDate,
    Skill,
    StrictIn,
    TimeZoneName,
)
from vetting.schemas import EngineerCardOut

LevelName = Literal["junior", "mid", "senior", "staff"]


class RequestIn(StrictIn):
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=10, max_length=10_000)
    required_skills: list[Skill] = Field(min_length=1, max_length=20)
    nice_to_have_skills: list[Skill] = Field(default_factory=list, max_length=20)
    min_level: LevelName = "mid"
    budget_kind: Literal["hourly", "fixed"]
    budget_minor: PositiveMinorUnits
    currency: Currency
    hours_per_week: StrictInt = Field(ge=1, le=80)
    expected_weeks: StrictInt = Field(default=4, ge=1, le=104)
    time_zone: TimeZoneName
    min_overlap_hours: StrictInt = Field(default=4, ge=0, le=8)
    start_date: SaneDate


class RequestPatch(PatchIn):
    title: str | None = Field(default=None, min_length=3, max_length=200)
    description: str | None = Field(default=None, min_length=10, max_length=10_000)
    required_skills: list[Skill] | None = Field(default=None, min_length=1, max_length=20)
    nice_to_have_skills: list[Skill] | None = Field(default=None, max_length=20)
    min_level: LevelName | None = None
    budget_kind: Literal["hourly", "fixed"] | None = None
    budget_minor: PositiveMinorUnits | None = None
    currency: Currency | None = None
    hours_per_week: StrictInt | None = Field(default=None, ge=1, le=80)
    expected_weeks: StrictInt | None = Field(default=None, ge=1, le=104)
    time_zone: TimeZoneName | None = None
    min_overlap_hours: StrictInt | None = Field(default=None, ge=0, le=8)
    start_date: SaneDate | None = None


class InvitationCountsOut(Schema):
    """How many of the request's invitations are in each state."""

    pending: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    withdrawn: int = 0
    not_chosen: int = 0


class WideningProposalOut(Schema):
    step: int = Field(description="The widening step proposed (1, 2, ...); answer it at /widening.")
    change: str = Field(description="What the step would change, in words.")


class ClockOut(Schema):
    """The 8-hour promise: times in ISO 8601 UTC, and what is happening in a sentence."""

    as_of: datetime = Field(description="When this clock was read (server time, UTC).")
    deadline: datetime | None = Field(description="When the 8 hours run out; null for a draft.")
    seconds_left: int | None = Field(description="Seconds until the deadline, never below 0; null for a draft.")
    met: bool | None = Field(description="Whether the shortlist came in time; null for a draft.")
    breached: bool
    summary: str = Field(description="What is happening now, in a sentence for the client.")
    invitations: InvitationCountsOut = Field(default_factory=InvitationCountsOut)
    # Widening steps answered so far, and those of them the client declined (the rest are in force).
    widening_step: int = 0
    widening_declined: list[int] = Field(default_factory=list)
    # Nobody matches the request as written.
    pool_empty: bool = False
    widening_proposed: WideningProposalOut | None = Field(
        default=None, description="A widening step waiting for the client's answer."
    )


class RequestOut(RowOut):
    id: int
    title: str
    description: str
    required_skills: list[str]
    nice_to_have_skills: list[str]
    min_level: Level
    budget_kind: BudgetKind
    budget_minor: int
    currency: CurrencyCode
    hours_per_week: int
    expected_weeks: int
    time_zone: str
    min_overlap_hours: int
    start_date: date
    status: RequestStatus
    created_at: datetime
    raised_at: datetime | None


class RequestDetailOut(RequestOut):
    clock: ClockOut


class SkillsFitOut(RowOut):
    score_bp: int
    required_vetted: list[str] = Field(description="Must-have skills the engineer's vetting assessed.")
    required_declared: list[str] = Field(description="Must-have skills the engineer only declared.")
    nice_matched: list[str]


class VettingFitOut(RowOut):
    score_bp: int
    level: Level


class TimeZoneFitOut(RowOut):
    score_bp: int
    gap_minutes: int = Field(description="Minutes between the engineer's and the request's time zones.")


class RateFitOut(RowOut):
    score_bp: int
    hourly_rate_minor: int


class FitOut(RowOut):
    score_bp: int


class BreakdownOut(RowOut):
    """Why an engineer ranked where they did: each factor's score in basis points (0-10,000) and its weight."""

    weights: dict[str, int] = Field(
        default_factory=dict, description="Each factor's weight, in percent; they add up to 100."
    )
    skills: SkillsFitOut | None = None
    vetting: VettingFitOut | None = None
    time_zone: TimeZoneFitOut | None = None
    rate: RateFitOut | None = None
    load: FitOut | None = None
    responsiveness: FitOut | None = None
    reputation: FitOut | None = Field(
        default=None,
        description="The engineer's review rating (a Bayesian average, docs/matching.md); the prior when unreviewed.",
    )


class MatchOut(Schema):
    """One invitation as its client sees it; who it is shows once they accept."""

    invitation_id: int = Field(validation_alias="pk")
    engineer_id: int | None
    wave: int
    rank: int
    status: InvitationStatus
    score_bp: int
    breakdown: BreakdownOut
    sent_at: datetime
    expires_at: datetime

    @staticmethod
    def resolve_engineer_id(invitation: Any) -> int | None:
        # Who was invited stays private until they accept.
        return invitation.engineer_id if invitation.status == InvitationStatus.ACCEPTED else None


class ShortlistEntryOut(RowOut):
    invitation_id: int = Field(validation_alias="pk")
    accepted_at: datetime | None = Field(validation_alias="responded_at")
    score_bp: int
    breakdown: BreakdownOut
    # The terms: the engineer's rate when invited, and the rate they accepted (the same, or their proposal).
    offered_rate_minor: int
    agreed_rate_minor: int | None
    # Set on each row by the view, for the whole page at once (vetting.selectors.engineer_cards).
    card: EngineerCardOut | None


class RequestSummaryOut(Schema):
    id: int
    title: str
    description: str
    required_skills: list[str]
    nice_to_have_skills: list[str]
    budget_kind: BudgetKind
    budget_minor: int
    currency: CurrencyCode
    hours_per_week: int
    time_zone: str
    start_date: date


class ClientReputationOut(Schema):
    """How the client is reviewed by engineers: rating in basis points of the 1-5 scale (7,500 = 4 stars,
    the prior for a client nobody has reviewed), the reviews behind it, and engagements they have paid."""

    rating_bp: int
    review_count: int
    paid_engagements: int


class InvitationOut(Schema):
    id: int
    status: InvitationStatus
    wave: int
    score_bp: int
    sent_at: datetime
    expires_at: datetime
    responded_at: datetime | None
    offered_rate_minor: int
    offered_hours_per_week: int
    agreed_rate_minor: int | None
    # Why it was withdrawn or not chosen, in words.
    closed_reason: str
    request: RequestSummaryOut
    client: ClientReputationOut

    @staticmethod
    def resolve_client(obj: Any) -> dict[str, int]:
        return {
            "rating_bp": obj.client_rating_bp,
            "review_count": obj.client_review_count,
            "paid_engagements": obj.client_paid_engagements,
        }


class DeclineIn(StrictIn):
    reason: str = Field(min_length=1, max_length=2_000)


class WideningIn(StrictIn):
    accept: StrictBool


class AcceptIn(StrictIn):
    # Omit to accept the offered rate; a different hourly rate (minor units) is a proposal the client sees.
    rate_minor: StrictInt | None = Field(default=None, gt=0, le=1_000_000)


class HireIn(StrictIn):
    engineer_id: Id
    # Needed when the engineer's agreed hourly rate is above the request's budget.
    accept_over_budget: StrictBool = False


class EngagementOut(Schema):
    id: int
    request_id: int
    client_id: int
    engineer_id: int
    rate_kind: BudgetKind
    rate_minor: int
    currency: CurrencyCode
    hours_per_week: int
    status: EngagementStatus
    created_at: datetime
    # Hourly engagements only: "awaiting_payment_method" until the client saves a card
    # (POST /api/payments/engagements/{id}/payment-method), then "active"; null for fixed ones.
    billing_status: str | None = None

    @staticmethod
    def resolve_billing_status(obj: Any) -> str | None:
        billing = getattr(obj, "billing", None) if obj.rate_kind == "hourly" else None
        return billing.status if billing is not None else None
