"""The two server-rendered pages a newcomer meets first: `/` and the demo story."""

from pathlib import Path

import markdown
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from accounts.demo import DEMO_USERS
from accounts.services import demo_password

DEMO_STORY = Path(settings.BASE_DIR) / "docs" / "demo.md"


# Read-only pages: a POST gets 405 from require_safe, not a CSRF failure page.
@csrf_exempt
@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    """What Vetted is and where to go next; the demo logins only outside production."""
    demo_logins = []
    if not settings.PRODUCTION:
        demo_logins = [(email, "staff" if is_staff else str(role)) for email, role, _name, is_staff in DEMO_USERS]
    return render(
        request,
        "marketplace/landing.html",
        {
            "demo_logins": demo_logins,
            "demo_password": demo_password() if demo_logins else "",
            "deadline_hours": settings.MATCH_DEADLINE_HOURS,
            "development": not settings.PRODUCTION,
        },
    )


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page (the admin's and the API docs' too)."""
    # Resolved per request: in production the hashed name exists only after collectstatic.
    # Temporary: the hashed name changes with every release, and browsers keep a permanent redirect for good.
    return redirect(static("marketplace/favicon.svg"))


@require_safe
def demo_story(request: HttpRequest) -> HttpResponse:
    """docs/demo.md as a page: the whole story by hand, for a reader who found `/` first (development only).

    The story uses the demo accounts and their published password, which production refuses.
    """
    if settings.PRODUCTION:
        raise Http404("The demo story is served in development only.")
    try:
        text = DEMO_STORY.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Http404("docs/demo.md is not part of this deployment") from None
    # Our own file from the repository, not user input: rendering its HTML is safe.
    body = mark_safe(markdown.markdown(text, extensions=["fenced_code", "tables"]))  # noqa: S308
    return render(request, "marketplace/document.html", {"title": "The demo story", "body": body})
