"""What every page of the web app shares: who may see it, and how a refusal is shown."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import User
from marketplace.errors import DomainError


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
