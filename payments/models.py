from django.conf import settings
from django.db import models
from django.utils import timezone

from marketplace.fields import one_of
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
            one_of("kind", LedgerAccountKind, name="payments_ledgeraccount_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.code


class LedgerTransactionKind(models.TextChoices):
    FUND = "fund", "Fund (card into escrow)"
    RELEASE = "release", "Release (escrow to engineer and fee)"
    REFUND = "refund", "Refund (escrow back to client)"
    SETTLE = "settle", "Settle (escrow split by staff)"
    DISPUTE = "dispute", "Dispute (chargeback after release)"
    CHARGEBACK = "chargeback", "Chargeback (out of escrow)"
    DISPUTE_WON = "dispute_won", "Dispute won"
    TIMESHEET_CHARGE = "timesheet_charge", "Timesheet charge (card into a week's escrow)"
    TIMESHEET_PAYOUT = "timesheet_payout", "Timesheet payout (week's escrow to engineer and fee)"


class LedgerTransaction(models.Model):
    """One movement of money. `reference` is unique: the same movement is never booked twice."""

    reference = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=LedgerTransactionKind.choices)
    milestone = models.ForeignKey(
        "payments.Milestone", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    timesheet = models.ForeignKey(
        "payments.Timesheet", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [one_of("kind", LedgerTransactionKind, name="payments_ledgertransaction_kind_valid")]

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
            one_of("status", MilestoneStatus, name="payments_milestone_status_valid"),
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


# --- hourly engagements: a saved card, weekly timesheets, off-session charges ----------------


class Customer(models.Model):
    """A client as a Stripe Customer, made once, when they first save a card (https://docs.stripe.com/api/customers)."""

    client = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer")
    stripe_customer_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.stripe_customer_id


class BillingStatus(models.TextChoices):
    """Whether an hourly engagement can be worked and billed."""

    # Hired; the client has not saved a card that may be charged off-session. No time can be logged.
    AWAITING_PAYMENT_METHOD = "awaiting_payment_method", "Awaiting a payment method"
    ACTIVE = "active", "Active"
    # The last charge retry failed: no time is logged until the client has paid.
    PAUSED = "paused", "Paused (a charge failed)"


_B = BillingStatus

# Every move an hourly engagement's billing may make (docs/payments.md, "Hourly engagements"); anything else is
# refused (BillingNotActive) by `payments.services.hourly.billing_move`.
BILLING_MOVES: dict[str, frozenset[str]] = {
    # The client saved a card that may be charged off-session (`setup_intent.succeeded`).
    _B.AWAITING_PAYMENT_METHOD: frozenset({_B.ACTIVE}),
    # The last charge retry failed (TIMESHEET_CHARGE_RETRY_DAYS).
    _B.ACTIVE: frozenset({_B.PAUSED}),
    # The client paid every failed week, or saved another card.
    _B.PAUSED: frozenset({_B.ACTIVE}),
}


class HourlyBilling(models.Model):
    """How an hourly engagement is paid: the client's saved card, and whether work may go on."""

    engagement = models.OneToOneField("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="billing")
    status = models.CharField(
        max_length=24, choices=BillingStatus.choices, default=BillingStatus.AWAITING_PAYMENT_METHOD
    )
    # The SetupIntent saving a card now (https://docs.stripe.com/payments/save-and-reuse); a new one per attempt.
    setup_intent_id = models.CharField(max_length=64, blank=True)
    setup_client_secret = models.CharField(max_length=128, blank=True)
    setup_attempt = models.PositiveSmallIntegerField(default=0)
    # The saved card that off-session charges use.
    payment_method_id = models.CharField(max_length=64, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # When the first card was saved: the engagement's start. No time is logged before it.
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "hourly billing"
        constraints = [one_of("status", BillingStatus, name="payments_hourlybilling_status_valid")]

    def __str__(self) -> str:
        return f"Billing of engagement {self.engagement_id} ({self.status})"


class WeeklyCap(models.Model):
    """The client's change to an engagement's weekly hours, from the week starting `applies_from` (a Monday)."""

    engagement = models.ForeignKey("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="weekly_caps")
    applies_from = models.DateField()
    hours = models.PositiveSmallIntegerField()
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["engagement", "applies_from"], name="weekly_cap_one_per_week"),
            models.CheckConstraint(condition=models.Q(hours__gte=1, hours__lte=168), name="weekly_cap_hours"),
        ]

    def __str__(self) -> str:
        return f"{self.hours} h/week from {self.applies_from}"


class TimesheetStatus(models.TextChoices):
    """Where a week of hourly work is. CHARGING and PAYING are Stripe steps claimed and not yet recorded."""

    OPEN = "open", "Open (the week is being logged)"
    SUBMITTED = "submitted", "Submitted (awaiting the client's review)"
    DISPUTED = "disputed", "Disputed (staff settle it)"
    APPROVED = "approved", "Approved (to be charged)"
    CHARGING = "charging", "Charging (creating the PaymentIntent)"
    CHARGE_FAILED = "charge_failed", "Charge failed"
    CHARGED = "charged", "Charged (to be paid out)"
    PAYING = "paying", "Paying (creating the Transfer)"
    PAID = "paid", "Paid"
    # Nothing to bill: no time logged, or staff settled the disputed week at nothing.
    VOID = "void", "Void (nothing to bill)"
    # Below Stripe's minimum charge: its minutes are billed with the next week.
    CARRIED_OVER = "carried_over", "Carried over to the next week"


_T = TimesheetStatus

# Every move a week's timesheet may make (docs/payments.md, "Billing a week"); anything else is refused
# (TimesheetStateConflict) by `payments.services.hourly.move`.
TIMESHEET_MOVES: dict[str, frozenset[str]] = {
    _T.OPEN: frozenset({_T.SUBMITTED, _T.VOID, _T.CARRIED_OVER}),
    _T.SUBMITTED: frozenset({_T.APPROVED, _T.CHARGING, _T.DISPUTED}),
    # Staff settle it: the share billed is charged as an approved week (or nothing is, and it is void).
    _T.DISPUTED: frozenset({_T.APPROVED, _T.VOID}),
    # Approved while the engagement's billing is not active: charged once it is.
    _T.APPROVED: frozenset({_T.CHARGING}),
    # Nothing reached Stripe: back to approved. A webhook may record the charge before the call returns.
    _T.CHARGING: frozenset({_T.CHARGED, _T.CHARGE_FAILED, _T.APPROVED}),
    # A retry, or the client confirming the payment in Stripe.js (the webhook records it).
    _T.CHARGE_FAILED: frozenset({_T.CHARGING, _T.CHARGED}),
    _T.CHARGED: frozenset({_T.PAYING}),
    # A refused Transfer leaves the money charged; the sweep pays it once it can.
    _T.PAYING: frozenset({_T.PAID, _T.CHARGED}),
    _T.PAID: frozenset(),
    _T.VOID: frozenset(),
    _T.CARRIED_OVER: frozenset(),
}
# Stripe steps in flight: claimed, not yet recorded.
TIMESHEET_STEP_STATES: frozenset[str] = frozenset({_T.CHARGING, _T.PAYING})
# The charged money is held (the timesheet's escrow account holds the amount).
TIMESHEET_HELD: frozenset[str] = frozenset({_T.CHARGED, _T.PAYING})


class Timesheet(models.Model):
    """One engagement's week, Monday 00:00 to Sunday 24:00 UTC, billed once at the engagement's rate."""

    engagement = models.ForeignKey("hiring_requests.Engagement", on_delete=models.PROTECT, related_name="timesheets")
    week_start = models.DateField()
    status = models.CharField(max_length=16, choices=TimesheetStatus.choices, default=TimesheetStatus.OPEN)
    # The rate and currency fixed at the hire; the amount is computed once, when the week closes.
    rate_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # Minutes brought in from an earlier week below Stripe's minimum charge.
    carried_minutes = models.PositiveIntegerField(default=0)
    minutes = models.PositiveIntegerField(default=0)
    disputed_minutes = models.PositiveIntegerField(default=0)
    amount_minor = models.BigIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    review_deadline = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_reason = models.TextField(blank=True)
    settle_share_minor = models.BigIntegerField(null=True, blank=True)
    # The Stripe step in flight, as for milestones: claimed at, attempt (in its key), parameters fixed at the claim.
    step_claimed_at = models.DateTimeField(null=True, blank=True)
    step_attempt = models.PositiveSmallIntegerField(default=0)
    step_failures = models.PositiveSmallIntegerField(default=0)
    step_payment_method = models.CharField(max_length=64, blank=True)
    step_amount_minor = models.BigIntegerField(null=True, blank=True)
    step_destination = models.CharField(max_length=64, blank=True)
    # Failed charges so far; the next retry's time (TIMESHEET_CHARGE_RETRY_DAYS), and why the last one failed.
    charge_failures = models.PositiveSmallIntegerField(default=0)
    next_charge_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # One PaymentIntent per timesheet, ever: retries confirm it again, so it can succeed only once.
    payment_intent_id = models.CharField(max_length=64, blank=True)
    client_secret = models.CharField(max_length=128, blank=True)
    charge_id = models.CharField(max_length=64, blank=True)
    transfer_id = models.CharField(max_length=64, blank=True)
    charged_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["engagement", "week_start"], name="timesheet_one_per_week"),
            models.CheckConstraint(condition=models.Q(amount_minor__gte=0), name="timesheet_amount_not_negative"),
            one_of("status", TimesheetStatus, name="payments_timesheet_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "week_start"], name="timesheet_status_week"),
            models.Index(fields=["status", "review_deadline"], name="timesheet_review_clock"),
            models.Index(fields=["status", "next_charge_at"], name="timesheet_charge_retry"),
        ]

    def __str__(self) -> str:
        return f"Week of {self.week_start} ({self.engagement_id})"


class TimeEntry(models.Model):
    """Time worked: `minutes` from `started_at` (UTC), with a note of what was done."""

    timesheet = models.ForeignKey(Timesheet, on_delete=models.PROTECT, related_name="entries")
    started_at = models.DateTimeField()
    minutes = models.PositiveSmallIntegerField()
    note = models.CharField(max_length=500)
    # The client's objection, when they dispute this entry.
    disputed = models.BooleanField(default=False)
    dispute_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "time entries"
        ordering = ["started_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(minutes__gte=1, minutes__lte=1440), name="time_entry_minutes")
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min from {self.started_at:%Y-%m-%d %H:%M} UTC"


class TimesheetEvent(models.Model):
    timesheet = models.ForeignKey(Timesheet, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"
