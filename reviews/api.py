from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from marketplace.auth import api_auth, current_user, staff_user
from marketplace.errors import EngagementNotFound
from marketplace.idempotency import accepts_idempotency_key
from reviews import selectors, services
from reviews.models import Review
from reviews.schemas import HideIn, OwnReviewOut, ReputationOut, ReviewIn, ReviewOut, RoundOut

router = Router(tags=["reviews"], auth=api_auth)

PUBLIC_REVIEWS = 50


@router.get(
    "/engagements/{engagement_id}", response=list[RoundOut], summary="An engagement's review rounds, oldest first"
)
@paginate
def rounds(request: HttpRequest, engagement_id: int) -> Any:
    found = selectors.rounds_of(user=current_user(request), engagement_id=engagement_id)
    if found is None:
        raise EngagementNotFound()
    return found


@router.post("/rounds/{round_id}", response={201: OwnReviewOut}, summary="Review the other side, once")
@accepts_idempotency_key
def review_submit(request: HttpRequest, round_id: int, payload: ReviewIn) -> Status[Review]:
    review = services.review_submit(
        author=current_user(request),
        round_id=round_id,
        overall=payload.overall,
        categories=payload.categories,
        public_text=payload.public_text,
        private_note=payload.private_note,
    )
    return Status(201, review)


@router.get("/users/{user_id}", response=ReputationOut, summary="A user's rating and published reviews")
def reputation(request: HttpRequest, user_id: int) -> dict[str, Any]:
    current_user(request)
    figures = selectors.reputation_of(user_id)
    reviews = list(selectors.public_reviews_of(subject_id=user_id)[:PUBLIC_REVIEWS])
    return {**figures, "user_id": user_id, "stars": selectors.stars(figures["rating_bp"]), "reviews": reviews}


@router.post("/staff/reviews/{review_id}/hide", response=ReviewOut, summary="Hide a review, with a reason (staff)")
def review_hide(request: HttpRequest, review_id: int, payload: HideIn) -> Review:
    return services.review_hide(staff=staff_user(request), review_id=review_id, reason=payload.reason)
