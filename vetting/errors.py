from marketplace.errors import DomainError


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"
    status = 409
    default_detail = "The application is not in a stage that allows this."


class ApplicationNotFound(DomainError):
    code = "application_not_found"
    status = 404
    default_detail = "No such application."


class ApplicationAlreadyOpen(DomainError):
    code = "application_open"
    status = 409
    default_detail = "You already have an application in progress."


class AlreadyVetted(DomainError):
    code = "already_vetted"
    status = 409
    default_detail = "You are vetted already; apply again when your vetting expires."


class CooldownActive(DomainError):
    code = "cooldown_active"
    status = 409
    default_detail = "You can apply again after the cool-down that follows a rejection."


class NotAnEngineer(DomainError):
    code = "not_an_engineer"
    status = 403
    default_detail = "Only engineers apply for vetting."


class ScoresIncomplete(DomainError):
    code = "scores_incomplete"
    status = 409
    default_detail = "Every criterion must be scored before a decision."


class BelowTheBar(DomainError):
    code = "below_the_bar"
    status = 409
    default_detail = "The weighted score is below the lowest level; the application can only be rejected."


class InvalidScore(DomainError):
    code = "invalid_score"
    status = 422
    default_detail = "Scores are whole numbers from 0 to 4 for criteria of this application's rubric."
    default_field = "scores"


class ReasonRequired(DomainError):
    code = "reason_required"
    status = 422
    default_detail = "A reason is required."
    default_field = "reason"


class InvalidInterviewer(DomainError):
    code = "invalid_interviewer"
    status = 422
    default_detail = "The interviewer must be an active staff member."
    default_field = "interviewer_id"


class InvalidRubric(DomainError):
    code = "invalid_rubric"
    status = 422
    default_detail = "The rubric is not valid."


class RubricNotFound(DomainError):
    code = "rubric_not_found"
    status = 404
    default_detail = "No rubric for that specialty."


class RecordNotFound(DomainError):
    code = "vetted_record_not_found"
    status = 404
    default_detail = "No such vetted record."


class AlreadyRevoked(DomainError):
    code = "already_revoked"
    status = 409
    default_detail = "This vetted record is revoked already."


class CardNotVisible(DomainError):
    code = "engineer_not_found"
    status = 404
    default_detail = "No such engineer among those you may see."


class OwnVetting(DomainError):
    code = "own_vetting"
    status = 403
    default_detail = "Nobody takes part in their own vetting."


class FourEyes(DomainError):
    code = "four_eyes"
    status = 409
    default_detail = "The approver must be someone other than the interviewer and whoever scored the interview."


class NotTheInterviewer(DomainError):
    code = "not_the_interviewer"
    status = 403
    default_detail = "Only the application's interviewer scores it."
