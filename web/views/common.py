"""What every page of the web app shares: who may see it, and how a refusal is shown."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

from accounts.models import User
from marketplace.errors import DomainError
from marketplace.throttling import FixedWindowThrottle


def user_of(request: HttpRequest) -> User:
    """The logged-in user (the views below are all behind login_required)."""
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - login_required guarantees it
    return user


def for_role(role: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page for clients or for engineers only: anyone else, logged in, gets 404 (nothing here for them)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if user_of(request).role != role:
                raise Http404("This page is for another kind of account.")
            return view(request, *args, **kwargs)

        return checked

    return decorate


def refused(request: HttpRequest, error: DomainError) -> None:
    """A service's refusal, shown at the top of the next page; a 404-style refusal becomes a 404."""
    if error.status == 404:
        raise Http404(error.detail)
    messages.error(request, error.detail)


def throttled(
    *throttles: FixedWindowThrottle,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """The API's rate limits on a page's POSTs (the same settings and counters, marketplace.throttling).

    Over a limit: 429 with Retry-After (RFC 9110, section 10.2.3) and a page that says when to try
    again. When the limit's cache is down, a limit that protects accounts answers 503.
    """

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "POST":
                if request.user.is_authenticated:
                    request.auth = request.user  # type: ignore[attr-defined]  # a "user" limit's key, as in the API
                try:
                    refused_by = next((t for t in throttles if not t.allow_request(request)), None)
                except DomainError as error:
                    return render(request, "web/error.html", {"detail": error.detail}, status=error.status)
                if refused_by is not None:
                    wait = max(1, int(refused_by.wait() or 60))
                    context = {"detail": f"Too many attempts. Try again in {wait} seconds."}
                    response = render(request, "web/error.html", context, status=429)
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return checked

    return decorate
