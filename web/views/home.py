"""After logging in: what needs you now, by role."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hiring_requests import selectors as hiring
from payments import selectors as payments
from web.views.common import user_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    engagements = payments.engagements_of(user=user)[:50]
    context: dict[str, Any] = {"engagements": engagements}
    if user.role == "client":
        context["requests"] = hiring.requests_of(client=user)[:50]
    elif user.role == "engineer":
        context["invitations"] = hiring.invitations_of(engineer=user).filter(status="pending")[:20]
    return render(request, "web/home.html", context)
