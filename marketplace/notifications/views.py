"""The one-click unsubscribe page (RFC 8058): GET asks, POST unsubscribes; no login, no CSRF token.

A mail provider POSTs `List-Unsubscribe=One-Click` to the link from the email's
headers with no cookies, so the POST cannot carry a CSRF token; the signed link is
the credential. GET never changes anything: mail scanners fetch links.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from marketplace.notifications import email, preferences
from marketplace.notifications.kinds import KINDS


def _what(kind: str) -> str:
    if kind == preferences.DAILY_DIGEST:
        return "the daily digest"
    known = KINDS.get(kind)
    return f"emails about: {known.description}" if known else kind


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    target = email.unsubscribe_target(token)
    if target is None or (target[1] in KINDS and KINDS[target[1]].always_essential):
        return render(request, "email/unsubscribe_invalid.html", status=400)
    user_id, kind = target
    if request.method == "POST":
        preferences.email_unsubscribe(user_id=user_id, kind=kind)
        return render(request, "email/unsubscribed.html", {"what": _what(kind)})
    return render(request, "email/unsubscribe_confirm.html", {"what": _what(kind)})
