"""Two-way, double-blind reviews of paid work, and the reputation they add up to."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from marketplace.fields import one_of

# What each side scores the other on, besides the overall score (all 1 to 5).
ENGINEER_CATEGORIES = ("quality", "communication", "reliability", "expertise")
CLIENT_CATEGORIES = ("clarity", "responsiveness", "fairness")


class ReviewRound(models.Model):
    """One paid step of an engagement that both sides may review once: a released milestone, a paid
    week, or the engagement's end. Reviews stay sealed until both are in or the window closes."""

    engagement = models.ForeignKey("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="review_rounds")
    # "milestone-<id>", "timesheet-<id>" or "ended": unique per engagement, so a step opens one round.
    step = models.CharField(max_length=40)
    opened_at = models.DateTimeField(default=timezone.now)
    closes_at = models.DateTimeField()
    # When the reviews became visible: both submitted, or the window closed (the sweep).
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["engagement", "step"], name="review_round_one_per_step")]
        indexes = [models.Index(fields=["published_at", "closes_at"], name="review_round_sealed")]

    def __str__(self) -> str:
        return f"Reviews of {self.step} ({self.engagement_id})"


class ReviewerRole(models.TextChoices):
    CLIENT = "client", "The client, of the engineer"
    ENGINEER = "engineer", "The engineer, of the client"


def reviewer_role(*, author_id: int, client_id: int) -> ReviewerRole:
    """The role of a party writing a review: the engagement's client (`client_id`), else its engineer."""
    return ReviewerRole.CLIENT if author_id == client_id else ReviewerRole.ENGINEER


def categories_scored_by(role: str) -> tuple[str, ...]:
    """What a reviewer in `role` (a ReviewerRole) scores: the client scores the engineer's work
    (ENGINEER_CATEGORIES), the engineer the client's (CLIENT_CATEGORIES)."""
    return ENGINEER_CATEGORIES if role == ReviewerRole.CLIENT else CLIENT_CATEGORIES


class Review(models.Model):
    round = models.ForeignKey(ReviewRound, on_delete=models.PROTECT, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_written")
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_received")
    role = models.CharField(max_length=8, choices=ReviewerRole.choices)
    overall = models.PositiveSmallIntegerField()
    # Category scores, 1 to 5: ENGINEER_CATEGORIES when the client writes, CLIENT_CATEGORIES when the engineer does.
    categories = models.JSONField()
    public_text = models.TextField(max_length=5_000)
    # For staff only: never shown to the other side or the public.
    private_note = models.TextField(max_length=5_000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_reason = models.TextField(blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "author"], name="review_once_per_round"),
            models.CheckConstraint(condition=models.Q(overall__gte=1, overall__lte=5), name="review_overall_1_to_5"),
            one_of("role", ReviewerRole, name="reviews_review_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.overall}/5 by {self.author_id} of {self.subject_id}"


class Reputation(models.Model):
    """A user's rating as reviewed by the other side: a Bayesian average and the count behind it.

    Kept in the transaction that publishes or hides a review. `rating_bp` maps 1-5 stars to
    0-10,000 basis points, the scale matching uses.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reputation")
    rating_bp = models.PositiveIntegerField()
    review_count = models.PositiveIntegerField(default=0)
    # Clients: engagements with at least one paid step (a released milestone or a paid week).
    paid_engagements = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Reputation of {self.user_id}: {self.rating_bp} bp from {self.review_count}"
