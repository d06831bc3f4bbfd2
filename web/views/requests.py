"""A client's requests: raise one, watch its 8-hour clock, read the matches and the shortlist, hire."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.models import EngineerProfile
from hiring_requests import selectors, services
from hiring_requests.schemas import RequestIn
from marketplace.errors import DomainError
from web.forms import RequestForm, refuse, validate_with
from web.views.common import for_role, refused, user_of

if TYPE_CHECKING:
    from hiring_requests.models import HiringRequest


def _own(request: HttpRequest, request_id: int) -> HiringRequest:
    found = selectors.request_of(client=user_of(request), request_id=request_id)
    if found is None:
        raise Http404("No such request.")
    return found


def _known_skills() -> list[str]:
    """Skills engineers have declared, offered as suggestions (the field still takes any)."""
    seen: set[str] = set()
    for listed in EngineerProfile.objects.exclude(skills=[]).values_list("skills", flat=True)[:500]:
        seen.update(listed)
    return sorted(seen)[:200]


@for_role("client")
def request_new(request: HttpRequest) -> HttpResponse:
    """Draft and raise in one step; refused for exactly what POST /api/requests would refuse, by field."""
    form = RequestForm(request.POST or None)
    if request.method == "POST":
        form.is_valid()  # then the API's schema on what cleaned, so every field's error shows at once
        valid = validate_with(form, RequestIn, form.as_api(), fields=RequestForm.SCHEMA_FIELDS)
        if valid is not None and not form.errors:
            try:
                draft = services.request_create(client=user_of(request), fields=valid.model_dump())
            except DomainError as error:
                refuse(form, error, fields=RequestForm.SCHEMA_FIELDS)
            else:
                try:
                    services.request_raise(client=user_of(request), request_id=draft.pk)
                except DomainError as error:  # the draft is kept; its page says why it is not raised
                    refused(request, error)
                return redirect("web:request", request_id=draft.pk)
    context = {"form": form, "skills": _known_skills(), "deadline_hours": settings.MATCH_DEADLINE_HOURS}
    return render(request, "web/request_new.html", context, status=422 if form.errors else 200)


@for_role("client")
@vary_on_headers("HX-Request")
def request_page(request: HttpRequest, request_id: int) -> HttpResponse:
    """The clock, any widening to answer, the matches with why, and the shortlist with each one's terms."""
    hiring_request = _own(request, request_id)
    context = {
        "r": hiring_request,
        "clock": selectors.clock(request=hiring_request),
        "matches": selectors.matches_of(request=hiring_request),
        "shortlist": selectors.shortlist_of(request=hiring_request).select_related("engineer"),
    }
    template = "web/_request_live.html" if request.headers.get("HX-Request") else "web/request.html"
    return render(request, template, context)


@require_POST
@for_role("client")
def request_hire(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        engagement = services.request_hire(
            client=user_of(request),
            request_id=request_id,
            engineer_id=int(request.POST.get("engineer_id", "0")),
            accept_over_budget=request.POST.get("accept_over_budget") == "on",
        )
    except DomainError as error:
        refused(request, error)
        return redirect("web:request", request_id=request_id)
    except ValueError:
        messages.error(request, "Choose an engineer from the shortlist.")
        return redirect("web:request", request_id=request_id)
    messages.success(request, "Hired. Add a milestone to fund the first piece of work.")
    return redirect("web:engagement", engagement_id=engagement.pk)


@require_POST
@for_role("client")
def request_widening(request: HttpRequest, request_id: int) -> HttpResponse:
    answer = request.POST.get("accept")
    if answer not in ("yes", "no"):
        messages.error(request, "Choose whether to widen the request.")
        return redirect("web:request", request_id=request_id)
    try:
        services.request_widening_answer(client=user_of(request), request_id=request_id, accept=answer == "yes")
    except DomainError as error:
        refused(request, error)
    return redirect("web:request", request_id=request_id)


@require_POST
@for_role("client")
def request_cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        services.request_cancel(client=user_of(request), request_id=request_id)
    except DomainError as error:
        refused(request, error)
    return redirect("web:request", request_id=request_id)
