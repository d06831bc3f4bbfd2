"""What each reader may see of reviews: the sealed rule lives here, once."""

from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from hiring_requests.engagements import engagement_visible
from reviews.models import Reputation, Review, ReviewRound, categories_scored_by, reviewer_role
from reviews.services import rating_bp


def prior_bp() -> int:
    return rating_bp(stars_total=0, count=0)


def stars(rating_bp: int) -> float:
    """A rating in basis points of the 1-5 scale (0 = 1 star, 10,000 = 5 stars) as stars, to two decimals."""
    return round(1 + rating_bp * 4 / 10_000, 2)


def reputation_bp_of(user_field: str = "user_id") -> Any:
    """An SQL expression: the rating (basis points) of the user in `user_field`, the prior when unreviewed."""
    rating = Reputation.objects.filter(user_id=OuterRef(user_field)).values("rating_bp")[:1]
    return Coalesce(Subquery(rating), Value(prior_bp()))


def reputation_count_of(user_field: str, count: Literal["review_count", "paid_engagements"]) -> Any:
    """An SQL expression: the `count` (reviews received, engagements paid) of the user in `user_field`, 0 when
    never reviewed."""
    value = Reputation.objects.filter(user_id=OuterRef(user_field)).values(count)[:1]
    return Coalesce(Subquery(value), Value(0))


def reputation_of(user_id: int) -> dict[str, int]:
    """{rating_bp, review_count, paid_engagements}: the prior and zeros for someone never reviewed."""
    found = Reputation.objects.filter(user_id=user_id).first()
    if found is None:
        return {"rating_bp": prior_bp(), "review_count": 0, "paid_engagements": 0}
    return {
        "rating_bp": found.rating_bp,
        "review_count": found.review_count,
        "paid_engagements": found.paid_engagements,
    }


def rounds_of(*, user: User, engagement_id: int) -> QuerySet[ReviewRound] | None:
    """The engagement's rounds, oldest first, with their reviews; None when `user` may not see the engagement."""
    if not engagement_visible(user=user, engagement_id=engagement_id):
        return None
    return (
        ReviewRound.objects.filter(engagement_id=engagement_id).prefetch_related("reviews").order_by("opened_at", "id")
    )


def own_review(round_: ReviewRound, reader: User) -> Review | None:
    """The reader's own review in a round (with its private note), or None."""
    return next((review for review in round_.reviews.all() if review.author_id == reader.pk), None)


def their_review(round_: ReviewRound, reader: User) -> Review | None:
    """The other side's review, only once the round is published and only if staff have not hidden it.

    The sealed rule, in one place: before publication a party sees nothing of it, not even that it
    exists. Staff see every review.
    """
    for review in round_.reviews.all():
        if review.author_id == reader.pk:
            continue
        if reader.is_staff or (round_.published_at is not None and review.hidden_at is None):
            return review
    return None


def public_reviews_of(*, subject_id: int) -> Any:
    """Published reviews of `subject_id` that staff have not hidden, newest first (a QuerySet)."""
    return (
        Review.objects.filter(subject_id=subject_id, round__published_at__isnull=False, hidden_at=None)
        .select_related("round")
        .order_by("-round__published_at", "-id")
    )


def round_of_party(*, user: User, round_id: int) -> ReviewRound | None:
    """Review round `round_id` with its engagement, when `user` is the engagement's client or engineer; else None."""
    round_ = ReviewRound.objects.select_related("engagement").filter(pk=round_id).first()
    if round_ is None or user.pk not in (round_.engagement.client_id, round_.engagement.engineer_id):
        return None
    return round_


def categories_to_score(*, round_: ReviewRound, author: User) -> tuple[str, ...]:
    """The categories `author`, a party to the round's engagement, scores in their review (`categories_scored_by`)."""
    return categories_scored_by(reviewer_role(author_id=author.pk, client_id=round_.engagement.client_id))


def rounds_closing_without_client_review(*, now: datetime, within: timedelta) -> QuerySet[ReviewRound]:
    """Open rounds whose window closes within `within` of `now` and whose client has not reviewed yet."""
    return (
        ReviewRound.objects.select_related("engagement")
        .filter(published_at=None, closes_at__gt=now, closes_at__lte=now + within)
        .exclude(reviews__author_id=F("engagement__client_id"))
        .order_by("closes_at", "pk")
    )
