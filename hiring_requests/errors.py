from marketplace.errors import DomainError


class RequestNotFound(DomainError):
    code = "request_not_found"
    status = 404
    default_detail = "No such request of yours."


class NotAClient(DomainError):
    code = "not_a_client"
    status = 403
    default_detail = "Only clients raise requests."


class InvalidRequest(DomainError):
    code = "invalid_request"
    status = 422
    default_detail = "The request has an invalid value."


class RequestStateConflict(DomainError):
    code = "request_state_conflict"
    status = 409
    default_detail = "The request is not in a state that allows this."


class InvitationNotFound(DomainError):
    code = "invitation_not_found"
    status = 404
    default_detail = "No such invitation of yours."


class InvitationNotPending(DomainError):
    code = "invitation_not_pending"
    status = 409
    default_detail = "This invitation has been answered, has expired or was withdrawn."


class InvitationExpired(DomainError):
    code = "invitation_expired"
    status = 409
    default_detail = "This invitation has expired."


class NotShortlisted(DomainError):
    code = "not_shortlisted"
    status = 409
    default_detail = "Only an engineer who accepted the invitation can be hired."


class PayoutsNotEnabled(DomainError):
    code = "payouts_not_enabled"
    status = 409
    default_detail = "This engineer cannot be hired until their payout account is set up."


class EngineerNotVetted(DomainError):
    code = "engineer_not_vetted"
    status = 409
    default_detail = "The engineer's vetting is no longer current; they cannot be accepted or hired."


class EngineerAtCapacity(DomainError):
    code = "engineer_at_capacity"
    status = 409
    default_detail = "The engineer has no free hours left for this request's hours per week."


class OverBudget(DomainError):
    code = "over_budget"
    status = 409
    default_detail = "The agreed rate is above the request's budget; hire with accept_over_budget to agree to it."


class InvalidOffer(DomainError):
    code = "invalid_offer"
    status = 422
    default_detail = "The offer has an invalid value."
