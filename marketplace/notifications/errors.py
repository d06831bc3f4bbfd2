from marketplace.errors import DomainError


class UnknownNotificationKind(DomainError):
    code = "notification_kind_unknown"
    status = 422
    default_detail = "No such notification kind for you; GET /api/notifications/email-preferences lists them."
    default_field = "preferences"


class EssentialNotification(DomainError):
    code = "notification_essential"
    status = 422
    default_detail = "Money and security emails cannot be turned off or put in a digest."
    default_field = "preferences"
