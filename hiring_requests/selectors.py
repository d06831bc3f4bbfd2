from accounts.models import User


def client_has_shortlisted(*, client: User, engineer_id: int) -> bool:
    """Whether the engineer is on a shortlist of one of the client's requests.

    Requests and shortlists arrive with matching (issue 4); until a client has
    raised a request, no engineer is on any of their shortlists.
    """
    return False
