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
    # Money a card dispute took back after it left escrow: the platform's loss until recovered.
    DISPUTE_EXPOSURE = "dispute_exposure", "Dispute exposure"


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
    """Where a milestone's money is. The -ing states are Stripe steps claimed and not yet recorded.

    Each of those is a recovery point (Brandur Leach, "Implementing Stripe-like
    Idempotency Keys in Postgres"): the step's idempotency key is derived from the
    row, so the sweep finishes an abandoned step by replaying it.
    """

    DRAFT = "draft", "Draft"
    FUNDING = "funding", "Funding (creating the PaymentIntent)"
    AWAITING_FUNDING = "awaiting_funding", "Awaiting funding"
    FUNDED = "funded", "Funded"
    SUBMITTED = "submitted", "Submitted"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    RELEASING = "releasing", "Releasing (creating the Transfer)"
    RELEASED = "released", "Released"
    REFUNDING = "refunding", "Refunding (creating the Refund)"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"
    SETTLING = "settling", "Settling (Transfer and Refund)"
    # A card dispute (chargeback) took the money back while escrow held it; Stripe's dispute decides the rest.
    CHARGED_BACK = "charged_back", "Charged back (card dispute)"
    CANCELLING = "cancelling", "Cancelling (cancelling the PaymentIntent)"
    CANCELLED = "cancelled", "Cancelled"


_S = MilestoneStatus

# Every move a milestone may make; anything else is refused (MilestoneStateConflict).
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    _S.DRAFT: frozenset({_S.FUNDING, _S.CANCELLED}),
    # The PaymentIntent was created (or Stripe said no, or never heard of it); a webhook may beat the record.
    _S.FUNDING: frozenset({_S.AWAITING_FUNDING, _S.DRAFT, _S.FUNDED}),
    _S.AWAITING_FUNDING: frozenset({_S.FUNDED, _S.CANCELLING}),
    _S.FUNDED: frozenset({_S.SUBMITTED, _S.REFUNDING, _S.DISPUTED, _S.CHARGED_BACK}),
    _S.SUBMITTED: frozenset({_S.CHANGES_REQUESTED, _S.APPROVED, _S.RELEASING, _S.DISPUTED, _S.CHARGED_BACK}),
    _S.CHANGES_REQUESTED: frozenset({_S.SUBMITTED, _S.DISPUTED, _S.CHARGED_BACK}),
    # Approved while the engineer cannot be paid yet; the sweep releases it once they can.
    _S.APPROVED: frozenset({_S.RELEASING, _S.DISPUTED, _S.CHARGED_BACK}),
    # A refused Transfer goes back where it came from; nothing moved at Stripe.
    _S.RELEASING: frozenset({_S.RELEASED, _S.SUBMITTED, _S.APPROVED}),
    _S.REFUNDING: frozenset({_S.REFUNDED, _S.FUNDED}),
    _S.DISPUTED: frozenset({_S.SETTLING, _S.CHARGED_BACK}),
    # Won: the money comes back into escrow. Lost: it stays with the cardholder, as a refund would.
    _S.CHARGED_BACK: frozenset({_S.FUNDED, _S.REFUNDED}),
    _S.SETTLING: frozenset({_S.RELEASED, _S.REFUNDED, _S.DISPUTED}),
    # Money that arrives for a cancelled milestone is booked and refunded.
    # A cancel that never reached Stripe, or that Stripe refused, goes back to waiting.
    _S.CANCELLING: frozenset({_S.CANCELLED, _S.REFUNDING, _S.AWAITING_FUNDING}),
    _S.CANCELLED: frozenset({_S.REFUNDING}),
    _S.RELEASED: frozenset(),
    _S.REFUNDED: frozenset(),
}

# The money is in escrow in these states (the ledger's escrow account holds the full amount).
ESCROW_HELD: frozenset[str] = frozenset(
    {_S.FUNDED, _S.SUBMITTED, _S.CHANGES_REQUESTED, _S.APPROVED, _S.RELEASING, _S.REFUNDING, _S.DISPUTED, _S.SETTLING}
)
# Stripe steps in flight: claimed, not yet recorded.
STEP_STATES: frozenset[str] = frozenset({_S.FUNDING, _S.RELEASING, _S.REFUNDING, _S.SETTLING, _S.CANCELLING})


class Milestone(models.Model):
    engagement = models.ForeignKey("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="milestones")
    title = models.CharField(max_length=200)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    due_date = models.DateField()
    status = models.CharField(max_length=20, choices=MilestoneStatus.choices, default=MilestoneStatus.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    # When the Stripe step in flight (a STEP_STATES status) was claimed; the sweep resumes stale ones.
    step_claimed_at = models.DateTimeField(null=True, blank=True)
    # Bumped when Stripe refuses a step, so the next try is a new request under a new idempotency key.
    step_attempt = models.PositiveSmallIntegerField(default=0)
    # The claimed step's parameters, fixed at the claim: a replay sends exactly what the first call sent.
    step_amount_minor = models.BigIntegerField(null=True, blank=True)
    step_destination = models.CharField(max_length=64, blank=True)
    # Failed resumptions of the claimed step; staff are told on the first.
    step_failures = models.PositiveSmallIntegerField(default=0)
    # Staff's split while a settlement is in flight: what the engineer gets, before the fee.
    settle_share_minor = models.BigIntegerField(null=True, blank=True)
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
        indexes = [
            models.Index(fields=["status", "review_deadline"], name="milestone_review_clock"),
            models.Index(fields=["status", "step_claimed_at"], name="milestone_step_in_flight"),
        ]

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
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When processing is next tried after a failure; retried with backoff for as long as it takes.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When staff were told this event is stuck (once).
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Stripe event"
        indexes = [models.Index(fields=["processed_at", "next_attempt_at"], name="stripe_event_retry_due")]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class Dispute(models.Model):
    """A card dispute (chargeback) Stripe told us of, kept under Stripe's id whatever the milestone's state."""

    stripe_id = models.CharField(max_length=64, unique=True)
    milestone = models.ForeignKey(Milestone, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes")
    charge_id = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32)
    # True when the money had already left escrow: the platform carries the loss until it is recovered.
    platform_exposed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Dispute {self.stripe_id} for {format_money(self.amount_minor, self.currency)} ({self.status})"
