"""Engagements and their milestones: create, fund (Stripe's Payment Element), submit, review, approve.

The money steps are async views, as the API's are: the Stripe call holds no database
connection (payments.services' atomic phases), and the whole step answers within
STRIPE_DEADLINE_SECONDS, else the page says to look again in a moment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from marketplace.db import atomic_phase
from marketplace.errors import DomainError
from payments import selectors, services
from payments.api import within_deadline
from reviews import selectors as review_selectors
from web.forms import MilestoneForm, NoteForm, ReasonForm, refuse, to_minor
from web.views.common import refused, user_of

if TYPE_CHECKING:
    from hiring_requests.models import Engagement
    from payments.models import Milestone


def _engagement(user: User, engagement_id: int) -> tuple[Engagement, list[Milestone]]:
    """The engagement (annotated with the other side's name) and its milestones, for its client and engineer;
    staff use the admin."""
    engagement = selectors.engagement_for(user=user, engagement_id=engagement_id)
    if engagement is None or user.pk not in (engagement.client_id, engagement.engineer_id):
        raise Http404("No such engagement.")
    milestones = selectors.milestones_of(user=user, engagement_id=engagement_id)
    # Each milestone's history (who moved it, when, why), read in one more query for all of them.
    if milestones is None:
        raise Http404("No such engagement.")
    return engagement, list(milestones.prefetch_related("events__actor"))


@login_required
@vary_on_headers("HX-Request")
def engagement_page(request: HttpRequest, engagement_id: int) -> HttpResponse:
    user = user_of(request)
    engagement, milestones = _engagement(user, engagement_id)
    form = MilestoneForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            amount = to_minor(form.cleaned_data["amount"], engagement.currency)
            services.milestone_create(
                client=user,
                engagement_id=engagement.pk,
                title=form.cleaned_data["title"],
                amount_minor=amount,
                due_date=form.cleaned_data["due_date"],
            )
        except DomainError as error:
            refuse(form, error, fields={"amount_minor": "amount"})
        except ValueError as error:
            form.add_error("amount", str(error))
        else:
            return redirect("web:engagement", engagement_id=engagement.pk)
    rounds = review_selectors.rounds_of(user=user, engagement_id=engagement.pk)
    context = {
        "e": engagement,
        "milestones": milestones,
        "form": form,
        "note_form": NoteForm(),
        "reason_form": ReasonForm(),
        "is_client": engagement.client_id == user.pk,
        "billing": selectors.billing_for(user=user, engagement_id=engagement.pk),
        # Each round with whether the reader has written theirs (one review each, never edited).
        "rounds": [(round_, review_selectors.own_review(round_, user) is not None) for round_ in rounds or []],
    }
    if request.headers.get("HX-Request"):
        return render(request, "web/_milestones.html", context)
    return render(request, "web/engagement.html", context, status=422 if form.errors else 200)


async def _money_step(
    request: HttpRequest, milestone_id: int, step: Callable[[User], Awaitable[Milestone]]
) -> Milestone | None:
    """Run a milestone's money step for the logged-in user; None (and a message) when it was refused."""
    user = await request.auser()
    if not isinstance(user, User):
        raise Http404()
    visible = await atomic_phase(selectors.milestone_for)(user=user, milestone_id=milestone_id)
    if visible is None:
        raise Http404("No such milestone.")
    try:
        return await within_deadline(step(user))
    except DomainError as error:
        if error.status == 404:
            raise Http404(error.detail) from None
        messages.error(request, error.detail)
        return None


@require_POST
@login_required
@csp_override(settings.STRIPE_PAGE_CSP)
async def milestone_fund(request: HttpRequest, milestone_id: int) -> HttpResponse:
    """The PaymentIntent (made once), confirmed in this page by Stripe's Payment Element; Stripe returns the
    browser to `milestone_funded`, and the `payment_intent.succeeded` webhook marks the milestone funded."""
    milestone = await _money_step(
        request, milestone_id, lambda user: services.amilestone_fund(client=user, milestone_id=milestone_id)
    )
    if milestone is None:
        return redirect("web:milestone-back", milestone_id=milestone_id)
    context = {
        "m": milestone,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js": settings.STRIPE_JS_URL,
        "return_url": request.build_absolute_uri(reverse("web:milestone-funded", args=[milestone.pk])),
    }
    # The page reads the session's user and messages: synchronous work, off the event loop.
    return await sync_to_async(render)(request, "web/fund.html", context)


@login_required
def milestone_funded(request: HttpRequest, milestone_id: int) -> HttpResponse:
    """Where Stripe sends the browser back: funded once the webhook has arrived, which the page waits for."""
    milestone = selectors.milestone_for(user=user_of(request), milestone_id=milestone_id)
    if milestone is None:
        raise Http404("No such milestone.")
    if milestone.status not in ("funding", "awaiting_funding"):  # nothing to wait for (any more)
        if milestone.status == "funded":
            messages.success(request, f"Milestone “{milestone.title}” is funded: the money is in escrow.")
        back = reverse("web:engagement", args=[milestone.engagement_id])
        # The page's poll (htmx) is told to move the whole page; a plain request is redirected.
        return HttpResponseClientRedirect(back) if request.headers.get("HX-Request") else redirect(back)
    return render(request, "web/funded.html", {"m": milestone})


@login_required
def milestone_back(request: HttpRequest, milestone_id: int) -> HttpResponse:
    milestone = selectors.milestone_for(user=user_of(request), milestone_id=milestone_id)
    if milestone is None:
        raise Http404("No such milestone.")
    return redirect("web:engagement", engagement_id=milestone.engagement_id)


@require_POST
@login_required
async def milestone_approve(request: HttpRequest, milestone_id: int) -> HttpResponse:
    approved = await _money_step(
        request, milestone_id, lambda user: services.amilestone_approve(client=user, milestone_id=milestone_id)
    )
    if approved is not None:
        messages.success(request, f"Approved: {approved.title} is {approved.get_status_display().lower()}.")
    return redirect("web:milestone-back", milestone_id=milestone_id)


@require_POST
@login_required
async def milestone_refund(request: HttpRequest, milestone_id: int) -> HttpResponse:
    refunded = await _money_step(
        request, milestone_id, lambda user: services.amilestone_refund(client=user, milestone_id=milestone_id)
    )
    if refunded is not None:
        messages.success(request, f"{refunded.title}: {refunded.get_status_display().lower()}.")
    return redirect("web:milestone-back", milestone_id=milestone_id)


@require_POST
@login_required
def milestone_step(request: HttpRequest, milestone_id: int, step: str) -> HttpResponse:
    """The steps without a Stripe call: submit (engineer), request changes (client), dispute (either)."""
    if step not in ("submit", "request-changes", "dispute"):
        raise Http404("No such step.")
    user = user_of(request)
    milestone = selectors.milestone_for(user=user, milestone_id=milestone_id)
    if milestone is None:
        raise Http404("No such milestone.")
    text = (request.POST.get("note") or request.POST.get("reason") or "").strip()[:2000]
    try:
        if step == "submit":
            services.milestone_submit(engineer=user, milestone_id=milestone_id, note=text)
        elif step == "request-changes":
            services.milestone_request_changes(client=user, milestone_id=milestone_id, note=text or "Changes asked")
        else:
            services.milestone_dispute(user=user, milestone_id=milestone_id, reason=text or "Disputed")
    except DomainError as error:
        refused(request, error)
    return redirect("web:engagement", engagement_id=milestone.engagement_id)
