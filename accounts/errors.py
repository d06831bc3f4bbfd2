from marketplace.errors import DomainError


class EmailTaken(DomainError):
    code = "email_taken"
    status = 409
    default_detail = "An account with this email address already exists."


class WeakPassword(DomainError):
    code = "weak_password"
    status = 422
    default_detail = "The password is too weak."
    default_field = "password"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = 401
    default_detail = "The email address or password is wrong."


class InvalidProfile(DomainError):
    code = "invalid_profile"
    status = 422
    default_detail = "The profile has an invalid value."


class ProfileNotFound(DomainError):
    code = "profile_not_found"
    status = 404
    default_detail = "No such profile of yours."


class TokenNotFound(DomainError):
    code = "token_not_found"
    status = 404
    default_detail = "No such API token of yours."
