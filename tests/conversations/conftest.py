from accounts.models import User
from conversations.models import Conversation
from hiring_requests import services as requests_services
from tests.hiring_requests.conftest import raised


def conversation_between(client: User, engineer: User) -> Conversation:
    """Raise a request, invite and accept: the conversation the accept opens."""
    request = raised(client)
    requests_services.matching_run(request_id=request.pk)
    requests_services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get(engineer=engineer).pk)
    return Conversation.objects.get(request=request, engineer=engineer)
