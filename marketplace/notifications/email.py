"""How a notification email is built: subject, plain text and HTML from templates, and the unsubscribe link.

Every email that is not essential carries a signed one-click unsubscribe link, per user
and kind, in its footer and in the `List-Unsubscribe` and `List-Unsubscribe-Post`
headers (RFC 8058). The link is a `django.core.signing` signature of (user, kind): it
needs no login and cannot be altered to name another user or kind.
"""

import email.policy
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template import engines
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User

UNSUBSCRIBE_SALT = "vetted.email.unsubscribe"


class NotificationEmail(EmailMultiAlternatives):
    """An email whose long headers are kept whole, never encoded.

    The `List-Unsubscribe` URL has no spaces to fold at and is longer than the 78
    characters a line should have; Python's default policy then turns it into
    RFC 2047 encoded words, which mail providers do not read as a URL. RFC 5322
    allows lines of up to 998 characters, so the header goes as it is.
    """

    def message(self, *, policy: Any = email.policy.default) -> Any:
        return super().message(policy=(policy or email.policy.default).clone(max_line_length=998))


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_target(token: str) -> tuple[int, str] | None:
    """The (user id, kind) a token was signed for, or None if it was altered or is not ours."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("k"), str):
        return None
    return data["u"], data["k"]


def unsubscribe_url(*, user_id: int, kind: str) -> str:
    path = reverse("email-unsubscribe", kwargs={"token": unsubscribe_token(user_id=user_id, kind=kind)})
    return f"{settings.SITE_URL}{path}"


def render_line(source: str, context: dict[str, Any]) -> str:
    """A one-line template from the registry (a subject or a summary), as plain text on one line."""
    template = engines["django"].from_string("{% load emails %}{% autoescape off %}" + source + "{% endautoescape %}")
    return " ".join(template.render(context).split())


def build(
    *, user: User, subject: str, template: str, context: dict[str, Any], unsubscribe_kind: str | None
) -> NotificationEmail:
    """The email to `user`: `template`'s `text` and `html` partials inside the layouts.

    `unsubscribe_kind` None means essential: no unsubscribe link and no List-Unsubscribe headers.
    """
    context = {
        **context,
        "user": user,
        "site_url": settings.SITE_URL,
        "body_text": f"email/{template}.html#text",
        "body_html": f"email/{template}.html#html",
    }
    headers = {}
    if unsubscribe_kind is not None:
        url = unsubscribe_url(user_id=user.pk, kind=unsubscribe_kind)
        context["unsubscribe_url"] = url
        headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    message = NotificationEmail(
        subject=subject,
        body=render_to_string("email/layout.txt", context),
        to=[user.email],
        headers=headers,
    )
    message.attach_alternative(render_to_string("email/layout.html", context), "text/html")
    return message
