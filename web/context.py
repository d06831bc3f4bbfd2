"""What every page of the web app shows in its header."""

from typing import Any

from django.http import HttpRequest

from marketplace.notifications import log


def bell(request: HttpRequest) -> dict[str, Any]:
    """The logged-in user's unread notifications (one query); live.js counts up from it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not request.path.startswith("/app/"):
        return {}
    return {"unread_notifications": log.unread_count(user_id=user.pk)}
