from marketplace.errors import DomainError


class ReviewRoundNotFound(DomainError):
    code = "review_round_not_found"
    status = 404
    default_detail = "No such review in your engagements."


class AlreadyReviewed(DomainError):
    code = "already_reviewed"
    status = 409
    default_detail = "You have reviewed this already; a review cannot be changed."


class ReviewWindowClosed(DomainError):
    code = "review_window_closed"
    status = 409
    default_detail = "The window for this review has closed."


class InvalidReview(DomainError):
    code = "invalid_review"
    status = 422
    default_detail = "The review has an invalid value."


class ReviewNotFound(DomainError):
    code = "review_not_found"
    status = 404
    default_detail = "No such review."
