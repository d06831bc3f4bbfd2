from marketplace.errors import DomainError


class ConversationNotFound(DomainError):
    code = "conversation_not_found"
    status = 404
    default_detail = "No such conversation of yours."


class ReadOnlyConversation(DomainError):
    code = "read_only"
    status = 403
    default_detail = "Staff read conversations; only the client and the engineer write in them."


class InvalidMessage(DomainError):
    code = "invalid_message"
    status = 422
    default_detail = "A message needs a body of 1 to 4,000 characters, without NUL characters or lone surrogates."
