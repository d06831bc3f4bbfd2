from django.conf import settings
from django.db import models
from django.utils import timezone

from marketplace.money import format_money


class PayoutAccount(models.Model):
    """Where an engineer is paid. Hiring requires `payouts_enabled`.

    The Stripe Connect onboarding (issue 6) keeps this current from
    `account.updated`; until then staff set it in admin.
    """

    engineer = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payout_account")
    stripe_account_id = models.CharField(max_length=64, blank=True)
    payouts_enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Payout account of {self.engineer.email}"


class LedgerAccountKind(models.TextChoices):
    # Money the platform holds for a milestone until it is released or refunded. Never negative.
    ESCROW = "escrow", "Escrow"
    # Where funded money comes from and refunded money goes: the client's card, through Stripe.
    CLIENT_FUNDING = "client_funding", "Client funding"
    # What the engineer is paid (a Transfer to their connected account).
    ENGINEER_PAYOUT = "engineer_payout", "Engineer payout"
    # The platform's fee on released milestones.
    PLATFORM_FEE = "platform_fee", "Platform fee"


class LedgerAccount(models.Model):
    code = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=LedgerAccountKind.choices)
    currency = models.CharField(max_length=3)
    # The sum of this account's entries, kept in the same transaction as each posting.
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="escrow") | models.Q(balance__gte=0), name="ledger_escrow_never_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class LedgerTransaction(models.Model):
    """One movement of money. `reference` is unique: the same movement is never booked twice."""

    reference = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20)
    milestone = models.ForeignKey(
        "payments.Milestone", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.reference


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.account.code}: {format_money(self.amount, self.currency)}"


class MilestoneStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_FUNDING = "awaiting_funding", "Awaiting funding"
    FUNDED = "funded", "Funded"
    SUBMITTED = "submitted", "Submitted"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    RELEASED = "released", "Released"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"
    CANCELLED = "cancelled", "Cancelled"


class Milestone(models.Model):
    engagement = models.ForeignKey("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="milestones")
    title = models.CharField(max_length=200)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    due_date = models.DateField()
    status = models.CharField(max_length=20, choices=MilestoneStatus.choices, default=MilestoneStatus.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    payment_intent_id = models.CharField(max_length=64, blank=True)
    client_secret = models.CharField(max_length=128, blank=True)
    charge_id = models.CharField(max_length=64, blank=True)
    transfer_id = models.CharField(max_length=64, blank=True)
    refund_id = models.CharField(max_length=64, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The client answers by this time, or the sweep approves. Paused (null) while changes are requested.
    review_deadline = models.DateTimeField(null=True, blank=True)
    change_rounds = models.PositiveSmallIntegerField(default=0)
    approved_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="milestone_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "review_deadline"], name="milestone_review_clock")]

    def __str__(self) -> str:
        return f"{self.title} ({self.engagement})"


class MilestoneEvent(models.Model):
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"


class StripeEvent(models.Model):
    """A webhook as received: stored under Stripe's id before anything else happens."""

    stripe_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "Stripe event"

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class IdempotencyRecord(models.Model):
    """Our own API's Idempotency-Key: the first response, replayed for the same key and body."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]

    def __str__(self) -> str:
        return self.key
