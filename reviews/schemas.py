from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field, StrictInt

from marketplace.auth import current_user
from marketplace.schemas import StrictIn
from reviews import selectors
from reviews.models import ReviewerRole


class ReviewIn(StrictIn):
    overall: StrictInt = Field(ge=1, le=5)
    # The client scores quality, communication, reliability, expertise; the engineer scores clarity,
    # responsiveness, fairness. Each 1 to 5.
    categories: dict[str, StrictInt] = Field(max_length=10)
    public_text: str = Field(min_length=1, max_length=5_000)
    # Read by staff only.
    private_note: str = Field(default="", max_length=5_000)


class ReviewOut(Schema):
    id: int
    round_id: int
    role: ReviewerRole
    author_id: int
    subject_id: int
    overall: int
    categories: dict[str, int]
    public_text: str
    created_at: datetime


class OwnReviewOut(ReviewOut):
    private_note: str


class RoundOut(Schema):
    id: int
    engagement_id: int
    step: str
    opened_at: datetime
    closes_at: datetime
    published_at: datetime | None
    mine: OwnReviewOut | None
    # The other side's review: null until both have written or the window has closed.
    theirs: ReviewOut | None

    @staticmethod
    def resolve_mine(round_: Any, context: Any) -> Any:
        return selectors.own_review(round_, current_user(context["request"]))

    @staticmethod
    def resolve_theirs(round_: Any, context: Any) -> Any:
        return selectors.their_review(round_, current_user(context["request"]))


class ReputationOut(Schema):
    user_id: int
    # The Bayesian average on the 1-5 scale, as basis points of it (0 = 1 star, 10,000 = 5 stars), and in stars.
    rating_bp: int
    stars: float
    review_count: int
    paid_engagements: int
    reviews: list[ReviewOut]


class HideIn(StrictIn):
    reason: str = Field(min_length=1, max_length=2_000)
