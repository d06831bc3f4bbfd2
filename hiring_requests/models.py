from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketplace.fields import SkillListField, one_of
from marketplace.levels import Level


class RequestStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    MATCHING = "matching", "Matching"
    SHORTLISTED = "shortlisted", "Shortlisted"
    HIRED = "hired", "Hired"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


# Requests the clock still runs for: waves, expiry, warnings.
ACTIVE_STATUSES = (RequestStatus.OPEN, RequestStatus.MATCHING, RequestStatus.SHORTLISTED)

_R = RequestStatus
# Every move a request may make (docs/matching.md, "A request's life"); anything else is refused
# (RequestStateConflict) by `hiring_requests.services._move`.
REQUEST_MOVES: dict[str, frozenset[str]] = {
    _R.DRAFT: frozenset({_R.OPEN, _R.CANCELLED}),
    # The first wave (or an invitation by hand) goes out.
    _R.OPEN: frozenset({_R.MATCHING, _R.CANCELLED}),
    # The first engineer accepts.
    _R.MATCHING: frozenset({_R.SHORTLISTED, _R.CANCELLED}),
    # Everyone left the shortlist: the promise is not met after all, and matching looks again.
    _R.SHORTLISTED: frozenset({_R.HIRED, _R.MATCHING, _R.CANCELLED}),
    _R.HIRED: frozenset({_R.CLOSED}),
    _R.CLOSED: frozenset(),
    _R.CANCELLED: frozenset(),
}


def moves_into(moves: dict[str, frozenset[str]], to: str) -> frozenset[str]:
    """The states that `moves` (a table of this module) allows to move to `to`: the guard of a bulk update."""
    return frozenset(state for state, allowed in moves.items() if to in allowed)


class BudgetKind(models.TextChoices):
    HOURLY = "hourly", "Hourly maximum"
    FIXED = "fixed", "Fixed total"


class HiringRequest(models.Model):
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hiring_requests")
    title = models.CharField(max_length=200)
    description = models.TextField()
    required_skills = SkillListField()
    nice_to_have_skills = SkillListField()
    min_level = models.CharField(max_length=16, choices=Level.choices, default=Level.MID)
    budget_kind = models.CharField(max_length=8, choices=BudgetKind.choices)
    budget_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    hours_per_week = models.PositiveSmallIntegerField()
    # How long the work should take: with a fixed budget, rate x hours_per_week x expected_weeks is the cost.
    expected_weeks = models.PositiveSmallIntegerField(default=4)
    time_zone = models.CharField(max_length=64, help_text="The client's working time zone.")
    min_overlap_hours = models.PositiveSmallIntegerField(default=4, help_text="Shared working hours a day (0-8).")
    start_date = models.DateField()
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    raised_at = models.DateTimeField(null=True, blank=True)
    match_deadline = models.DateTimeField(null=True, blank=True)
    shortlisted_at = models.DateTimeField(null=True, blank=True, help_text="When the first engineer accepted.")
    # How many widening steps (hiring_requests.matching.WIDENING_STEPS) the client has answered, in order;
    # those they declined are listed in widening_declined, and every other answered step is applied.
    widening_step = models.PositiveSmallIntegerField(default=0)
    widening_declined = models.JSONField(default=list, blank=True)
    # A widening step proposed to the client and not yet answered (0: none).
    widening_proposed = models.PositiveSmallIntegerField(default=0)
    # When matching last found nobody at all (None: it found someone, or has not run).
    pool_empty_at = models.DateTimeField(null=True, blank=True)
    waves_sent = models.PositiveSmallIntegerField(default=0)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(budget_minor__gt=0), name="requests_budget_positive"),
            models.CheckConstraint(
                condition=Q(hours_per_week__gte=1, hours_per_week__lte=80), name="requests_hours_1_80"
            ),
            models.CheckConstraint(condition=Q(min_overlap_hours__lte=8), name="requests_overlap_0_8"),
            models.CheckConstraint(
                condition=Q(expected_weeks__gte=1, expected_weeks__lte=104), name="requests_weeks_1_104"
            ),
            one_of("status", RequestStatus, name="hiring_requests_hiringrequest_status_valid"),
            one_of("budget_kind", BudgetKind, name="hiring_requests_hiringrequest_budget_kind_valid"),
            one_of("min_level", Level, name="hiring_requests_hiringrequest_min_level_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="requests_client_recent"),
            models.Index(fields=["status", "match_deadline"], name="requests_clock"),
        ]

    def __str__(self) -> str:
        return self.title

    def widenings_applied(self) -> set[int]:
        """The widening steps in force: answered and not declined (each relaxes its own filter)."""
        return set(range(1, self.widening_step + 1)) - set(self.widening_declined)


class RequestEvent(models.Model):
    """What happened to a request and when: raised, waves, widening, warnings, breach, hire."""

    request = models.ForeignKey(HiringRequest, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.kind


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    # Taken back: the request was filled or cancelled, the engineer's vetting lapsed, or they left the shortlist.
    WITHDRAWN = "withdrawn", "Withdrawn"
    # On the shortlist when the client hired someone else.
    NOT_CHOSEN = "not_chosen", "Not chosen"


# Invitations that hold an engineer's hours while their request is still open.
HOLDING_STATUSES = (InvitationStatus.PENDING, InvitationStatus.ACCEPTED)

_I = InvitationStatus
# Every move an invitation may make (docs/matching.md, "Invitations"); anything else is refused
# (InvitationNotPending) by `hiring_requests.services._move_invitation`.
INVITATION_MOVES: dict[str, frozenset[str]] = {
    # The engineer answers, the clock expires it, or it is taken back (request filled or cancelled, vetting lapsed).
    _I.PENDING: frozenset({_I.ACCEPTED, _I.DECLINED, _I.EXPIRED, _I.WITHDRAWN}),
    # On the shortlist: the engineer leaves it or their vetting lapses, or the client hires someone else.
    _I.ACCEPTED: frozenset({_I.WITHDRAWN, _I.NOT_CHOSEN}),
    _I.DECLINED: frozenset(),
    _I.EXPIRED: frozenset(),
    _I.WITHDRAWN: frozenset(),
    _I.NOT_CHOSEN: frozenset(),
}


class Invitation(models.Model):
    """An offer sent to an engineer: the terms offered, the terms accepted, and why they were ranked.

    The offer holds its terms: `offered_rate_minor` is the engineer's rate when the
    offer went out, and `agreed_rate_minor` what they accepted (the same, or a rate
    they proposed, which the client sees). A hire uses exactly the agreed terms; a
    later profile change touches neither.
    """

    request = models.ForeignKey(HiringRequest, on_delete=models.CASCADE, related_name="invitations")
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    wave = models.PositiveSmallIntegerField()
    rank = models.PositiveSmallIntegerField()
    score_bp = models.PositiveIntegerField()
    breakdown = models.JSONField()
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)
    # Sent outside the engineer's working hours: its time to answer ran from their next morning, and
    # letting it expire does not count against their responsiveness.
    sent_off_hours = models.BooleanField(default=False)
    # Why it was withdrawn or closed, in words the client and the engineer are shown.
    closed_reason = models.TextField(blank=True)
    offered_rate_minor = models.BigIntegerField(default=0)
    offered_hours_per_week = models.PositiveSmallIntegerField(default=0)
    agreed_rate_minor = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "engineer"], name="requests_invite_engineer_once"),
            one_of("status", InvitationStatus, name="hiring_requests_invitation_status_valid"),
        ]
        indexes = [
            models.Index(fields=["engineer", "status"], name="requests_invite_engineer"),
            models.Index(fields=["status", "expires_at"], name="requests_invite_expiry"),
        ]
        ordering = ["wave", "rank"]

    def __str__(self) -> str:
        return f"Invitation of {self.engineer.email} to {self.request.title} ({self.get_status_display().lower()})"


class EngagementStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


# An engagement ends when its request is closed (`hiring_requests.services.request_close`), and stays ended.
ENGAGEMENT_MOVES: dict[str, frozenset[str]] = {
    EngagementStatus.ACTIVE: frozenset({EngagementStatus.ENDED}),
    EngagementStatus.ENDED: frozenset(),
}


class Engagement(models.Model):
    """The hire: who works for whom on which request, at what agreed rate."""

    request = models.OneToOneField(HiringRequest, on_delete=models.PROTECT, related_name="engagement")
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="engagements_as_client")
    engineer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="engagements_as_engineer"
    )
    rate_kind = models.CharField(max_length=8, choices=BudgetKind.choices)
    rate_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    hours_per_week = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8, choices=EngagementStatus.choices, default=EngagementStatus.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(rate_minor__gt=0), name="engagement_rate_positive"),
            one_of("rate_kind", BudgetKind, name="hiring_requests_engagement_rate_kind_valid"),
            one_of("status", EngagementStatus, name="hiring_requests_engagement_status_valid"),
        ]
        indexes = [models.Index(fields=["engineer", "status"], name="engagement_engineer_active")]

    def __str__(self) -> str:
        return f"{self.request.title}: {self.engineer.email} for {self.client.email}"
