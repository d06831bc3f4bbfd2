"""Reviews: opened by paid steps, sealed until both sides have written or the window closes, then public.

The rules (docs/matching.md, "Reputation"):
- A round opens when money reaches the engineer for a step (a released milestone, a paid
  week) and when an engagement with paid work ends. Each of its two parties may review the
  other once, within REVIEW_WINDOW_DAYS; a published review cannot be changed.
- Double-blind, as on Upwork: neither side sees the other's review until both have written or
  the window has closed (`reviews_publish_due`, a beat job).
- A user's rating is a Bayesian average of the published, visible reviews of them:
  (PRIOR_STARS x REPUTATION_PRIOR_WEIGHT + the stars received) / (REPUTATION_PRIOR_WEIGHT + their
  count), so one review cannot dominate and a newcomer starts at PRIOR_STARS.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import User
from marketplace.errors import Forbidden
from marketplace.notifications import notify_user
from reviews.errors import AlreadyReviewed, InvalidReview, ReviewNotFound, ReviewRoundNotFound, ReviewWindowClosed
from reviews.models import Reputation, Review, ReviewerRole, ReviewRound, categories_scored_by, reviewer_role

if TYPE_CHECKING:
    from hiring_requests.models import Engagement

logger = logging.getLogger(__name__)

# Where every rating starts, and what the prior pulls towards: a vetted engineer (or a client who
# paid) is presumed good, not perfect.
PRIOR_STARS = 4


def rating_bp(*, stars_total: int, count: int) -> int:
    """The Bayesian average of `count` reviews totalling `stars_total` stars, as 0-10,000 basis points
    of the 1-5 scale (rounded down). With no reviews it is PRIOR_STARS: 7,500 bp."""
    weight = settings.REPUTATION_PRIOR_WEIGHT
    average_x10000 = 10_000 * (PRIOR_STARS * weight + stars_total) // (weight + count)
    return (average_x10000 - 10_000) // 4


def review_round_open(*, engagement: Engagement, step: str, now: datetime | None = None) -> ReviewRound:
    """Open the round for a paid step (in the caller's transaction); both parties are told a review is due.

    `step`: "milestone-<id>", "timesheet-<id>" or "ended". Opening it again returns the same round.
    """
    now = now or timezone.now()
    made, created = ReviewRound.objects.get_or_create(
        engagement=engagement,
        step=step,
        defaults={"opened_at": now, "closes_at": now + timedelta(days=settings.REVIEW_WINDOW_DAYS)},
    )
    if created:
        if step != "ended":
            _count_paid_engagements(engagement.client_id)
        payload = {
            "round_id": made.pk,
            "engagement_id": engagement.pk,
            "step": step,
            "closes_at": made.closes_at.isoformat(),
        }
        for user_id in (engagement.client_id, engagement.engineer_id):
            notify_user(user_id=user_id, event="review.due", payload=payload)
    return made


def engagement_ended(*, engagement: Engagement) -> ReviewRound | None:
    """An engagement ended: a last round, if it had paid work (only parties of a paid step review)."""
    if not ReviewRound.objects.filter(engagement=engagement).exclude(step="ended").exists():
        return None
    return review_round_open(engagement=engagement, step="ended")


def _count_paid_engagements(client_id: int) -> None:
    paid = (
        ReviewRound.objects.filter(engagement__client_id=client_id)
        .exclude(step="ended")
        .values("engagement_id")
        .distinct()
        .count()
    )
    reputation = _reputation(client_id)
    reputation.paid_engagements = paid
    reputation.save(update_fields=["paid_engagements", "updated_at"])


def _reputation(user_id: int) -> Reputation:
    reputation, _ = Reputation.objects.get_or_create(
        user_id=user_id, defaults={"rating_bp": rating_bp(stars_total=0, count=0)}
    )
    return reputation


def reputation_recompute(user_id: int) -> Reputation:
    """The user's rating from their published, visible reviews (in the caller's transaction)."""
    totals = Review.objects.filter(subject_id=user_id, round__published_at__isnull=False, hidden_at=None).aggregate(
        count=Count("id"), stars=Sum("overall")
    )
    reputation = _reputation(user_id)
    reputation.review_count = totals["count"]
    reputation.rating_bp = rating_bp(stars_total=totals["stars"] or 0, count=totals["count"])
    reputation.save(update_fields=["review_count", "rating_bp", "updated_at"])
    return reputation


def _publish(round_: ReviewRound, now: datetime) -> None:
    round_.published_at = now
    round_.save(update_fields=["published_at"])
    engagement = round_.engagement
    for review in round_.reviews.all():
        reputation_recompute(review.subject_id)
    payload = {"round_id": round_.pk, "engagement_id": engagement.pk, "step": round_.step}
    for user_id in (engagement.client_id, engagement.engineer_id):
        notify_user(user_id=user_id, event="review.published", payload=payload)


def _check_scores(role: str, overall: int, categories: dict[str, int]) -> None:
    expected = categories_scored_by(role)
    if not 1 <= overall <= 5:
        raise InvalidReview("overall: a whole number from 1 to 5", field="overall")
    if set(categories) != set(expected):
        raise InvalidReview(f"categories: score exactly {', '.join(expected)}", field="categories")
    if any(
        not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5 for score in categories.values()
    ):
        raise InvalidReview("categories: each score is a whole number from 1 to 5", field="categories")


def review_submit(
    *,
    author: User,
    round_id: int,
    overall: int,
    categories: dict[str, int],
    public_text: str,
    private_note: str = "",
    now: datetime | None = None,
) -> Review:
    """Write the author's one review of the other party for a round; publish both once both are in.

    `overall` and each category score are 1-5; the categories are ENGINEER_CATEGORIES when the
    client writes, CLIENT_CATEGORIES when the engineer does. Raises ReviewRoundNotFound (not a
    party), ReviewWindowClosed, AlreadyReviewed, InvalidReview.
    """
    now = now or timezone.now()
    with transaction.atomic():
        round_ = (
            ReviewRound.objects.select_for_update(of=("self",)).select_related("engagement").filter(pk=round_id).first()
        )
        if round_ is None or author.pk not in (round_.engagement.client_id, round_.engagement.engineer_id):
            raise ReviewRoundNotFound()
        engagement = round_.engagement
        role = reviewer_role(author_id=author.pk, client_id=engagement.client_id)
        _check_scores(role, overall, categories)
        if not public_text.strip():
            raise InvalidReview("public_text: say how it went", field="public_text")
        if Review.objects.filter(round=round_, author=author).exists():
            raise AlreadyReviewed()
        if round_.published_at is not None or now >= round_.closes_at:
            raise ReviewWindowClosed()
        review = Review.objects.create(
            round=round_,
            author=author,
            role=role,
            overall=overall,
            categories=categories,
            subject_id=engagement.engineer_id if role == ReviewerRole.CLIENT else engagement.client_id,
            public_text=public_text.strip(),
            private_note=private_note.strip(),
            created_at=now,
        )
        if round_.reviews.count() == 2:
            _publish(round_, now)
        logger.info("review.submitted", extra={"round_id": round_.pk, "role": role})
    return review


def reviews_publish_due(*, now: datetime | None = None) -> int:
    """The beat job: publish every round whose window has closed. Returns how many were published."""
    now = now or timezone.now()
    published = 0
    for round_id in ReviewRound.objects.filter(published_at=None, closes_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            round_ = ReviewRound.objects.select_for_update(of=("self",)).select_related("engagement").get(pk=round_id)
            if round_.published_at is None:
                _publish(round_, now)
                published += 1
    return published


def review_hide(*, staff: User, review_id: int, reason: str) -> Review:
    """Staff hide a review from everyone but staff, with a recorded reason; the subject's rating follows.

    Raises Forbidden, ReviewNotFound, InvalidReview (no reason).
    """
    if not staff.is_staff:
        raise Forbidden("Only staff hide reviews.")
    if not reason.strip():
        raise InvalidReview("reason: say why it is hidden", field="reason")
    with transaction.atomic():
        review = Review.objects.select_for_update().filter(pk=review_id).first()
        if review is None:
            raise ReviewNotFound()
        review.hidden_at, review.hidden_reason, review.hidden_by = timezone.now(), reason.strip(), staff
        review.save(update_fields=["hidden_at", "hidden_reason", "hidden_by"])
        reputation_recompute(review.subject_id)
    return review
