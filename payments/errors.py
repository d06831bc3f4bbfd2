from marketplace.errors import DomainError


class MilestoneNotFound(DomainError):
    code = "milestone_not_found"
    status = 404
    default_detail = "No such milestone in your engagements."


class MilestoneStateConflict(DomainError):
    code = "milestone_state_conflict"
    status = 409
    default_detail = "The milestone is not in a state that allows this."


class InvalidMilestone(DomainError):
    code = "invalid_milestone"
    status = 422
    default_detail = "The milestone has an invalid value."


class TooManyChangeRounds(DomainError):
    code = "too_many_change_rounds"
    status = 409
    default_detail = "The most rounds of changes have been asked for; approve or open a dispute."


class PaymentsUnavailable(DomainError):
    """Stripe did not answer in time or at all. `sent`: the request may have reached Stripe (outcome unknown)."""

    code = "payments_unavailable"
    status = 503
    default_detail = "Payments are unavailable for a moment. Try again shortly; nothing will happen twice."

    def __init__(self, detail: str | None = None, *, retry_after: int = 30, sent: bool = True) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.sent = sent


class PaymentsBusy(PaymentsUnavailable):
    """Too many Stripe calls in flight in this process; this one was never sent."""

    code = "payments_busy"
    default_detail = "Too many payment operations are in flight; nothing was sent. Try again in a moment."

    def __init__(self, detail: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(detail, retry_after=retry_after, sent=False)


class PaymentRefused(DomainError):
    """Stripe answered and refused; `stripe_code` is Stripe's error code (https://docs.stripe.com/error-codes)."""

    code = "payment_refused"
    status = 402
    default_detail = "Stripe refused the payment operation."

    def __init__(
        self, detail: str | None = None, *, stripe_code: str | None = None, payment_intent_id: str = ""
    ) -> None:
        super().__init__(detail)
        self.stripe_code = stripe_code
        # A card error names the PaymentIntent it failed (https://docs.stripe.com/api/errors, `payment_intent`).
        self.payment_intent_id = payment_intent_id


class AmountOutOfRange(DomainError):
    code = "amount_out_of_range"
    status = 422
    default_detail = "The amount is outside what Stripe can charge in this currency."
    default_field = "amount_minor"


class PayoutAccountMissing(DomainError):
    code = "payout_account_missing"
    status = 409
    default_detail = "The engineer has no payout account with payouts enabled."


class InvalidSignature(DomainError):
    code = "invalid_signature"
    status = 400
    default_detail = "The webhook signature does not verify."


class InvalidEvent(DomainError):
    """A correctly signed webhook whose body is not a well-formed Stripe event."""

    code = "invalid_event"
    status = 400
    default_detail = "The webhook body is not a Stripe event."


class TimesheetNotFound(DomainError):
    code = "timesheet_not_found"
    status = 404
    default_detail = "No such timesheet in your engagements."


class TimeEntryNotFound(DomainError):
    code = "time_entry_not_found"
    status = 404
    default_detail = "No such time entry in your timesheets."


class TimesheetStateConflict(DomainError):
    code = "timesheet_state_conflict"
    status = 409
    default_detail = "The timesheet is not in a state that allows this."


class InvalidTimeEntry(DomainError):
    code = "invalid_time_entry"
    status = 422
    default_detail = "The time entry has an invalid value."


class WeeklyCapExceeded(DomainError):
    code = "weekly_cap_exceeded"
    status = 422
    default_detail = "This would take the week over the engagement's weekly hours."
    default_field = "minutes"


class NotHourly(DomainError):
    code = "not_hourly"
    status = 409
    default_detail = "This engagement is billed by milestones, not by the hour."


class BillingNotActive(DomainError):
    """An hourly engagement that cannot be worked now: no card saved yet, or paused after a failed charge."""

    code = "billing_not_active"
    status = 409
    default_detail = "Time cannot be logged on this engagement until the client has a working payment method."
