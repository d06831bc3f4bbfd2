"""The notification log as a page (what the bell counts), and the email preference of each kind."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from marketplace.errors import DomainError
from marketplace.notifications import log, preferences
from marketplace.notifications.kinds import KINDS
from web.views.common import user_of

SHOWN = 50


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The newest SHOWN notifications, newest first; opening the page marks them read."""
    user = user_of(request)
    newest = list(log.numbered_of(user_id=user.pk).order_by("-seq")[:SHOWN])
    if newest:
        log.mark_read(user_id=user.pk, up_to=newest[0].seq or 0)
    rows = [(n, KINDS[n.event].description if n.event in KINDS else n.event) for n in newest]
    return render(request, "web/notifications.html", {"notifications": rows})


@login_required
def email_preferences(request: HttpRequest) -> HttpResponse:
    """Each kind the user can receive: immediately, in the daily digest, or never (essential kinds: always)."""
    user = user_of(request)
    if request.method == "POST":
        choices = {
            row["kind"]: request.POST[f"kind-{row['kind']}"]
            for row in preferences.email_preferences_of(user=user)
            if row["can_turn_off"] and request.POST.get(f"kind-{row['kind']}") in ("immediately", "daily", "never")
        }
        try:
            preferences.email_preferences_set(user=user, choices=choices)
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, "Saved.")
            return redirect("web:email-preferences")
    return render(request, "web/email_preferences.html", {"rows": preferences.email_preferences_of(user=user)})
