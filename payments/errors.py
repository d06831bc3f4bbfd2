from marketplace.errors import DomainError


class MilestoneNotFound(DomainError):
    code = "milestone_not_found"
    status = 404
    default_detail = "No such milestone in your engagements."


class EngagementNotFound(DomainError):
    code = "engagement_not_found"
    status = 404
    default_detail = "No such engagement of yours."


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
    code = "payments_unavailable"
    status = 503
    default_detail = "Payments are unavailable for a moment; nothing was charged or paid. Try again shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 30) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PaymentRefused(DomainError):
    code = "payment_refused"
    status = 402
    default_detail = "Stripe refused the payment operation."


class PayoutAccountMissing(DomainError):
    code = "payout_account_missing"
    status = 409
    default_detail = "The engineer has no payout account with payouts enabled."


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 409
    default_detail = "This Idempotency-Key was used with a different request."


class IdempotencyKeyInFlight(DomainError):
    code = "idempotency_key_in_flight"
    status = 409
    default_detail = "A request with this Idempotency-Key is still running; retry in a moment."


class InvalidSignature(DomainError):
    code = "invalid_signature"
    status = 400
    default_detail = "The webhook signature does not verify."
