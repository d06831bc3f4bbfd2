"""Hourly engagements: the client saves a card (a SetupIntent confirmed by Stripe's Payment Element), the
engineer logs time by day, the client approves or disputes each week, and fixes a failed charge.

Card and charge steps are async views like the API's: no database connection is held while Stripe answers.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from marketplace.db import atomic_phase
from marketplace.errors import DomainError
from payments import selectors, services
from payments.api import within_deadline
from web.forms import refuse
from web.views.common import refused, user_of

if TYPE_CHECKING:
    from hiring_requests.models import Engagement
    from payments.models import Timesheet

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only, and no bigger than a database id


class TimeEntryForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Day (your time zone)")
    start = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}), initial=time(9), label="Started at")
    minutes = forms.IntegerField(min_value=1, max_value=1440, label="Minutes worked")
    note = forms.CharField(max_length=500, label="What you did")


def _timesheet(user: User, timesheet_id: int) -> Timesheet:
    """The week, for the engagement's client and engineer; 404 for anyone else."""
    try:
        return selectors.timesheet_for(user=user, timesheet_id=timesheet_id)
    except DomainError as error:
        raise Http404(error.detail) from None


def _party(user: User, engagement_id: int) -> Engagement:
    engagement = selectors.engagement_for(user=user, engagement_id=engagement_id)
    if engagement is None or user.pk not in (engagement.client_id, engagement.engineer_id):
        raise Http404("No such engagement.")
    return engagement


@login_required
@vary_on_headers("HX-Request")
def timesheets(request: HttpRequest, engagement_id: int) -> HttpResponse:
    """The weeks of an hourly engagement; the engineer logs time here, the client reviews each submitted week."""
    user = user_of(request)
    engagement = _party(user, engagement_id)
    weeks = selectors.timesheets_of(user=user, engagement_id=engagement.pk)
    if weeks is None:
        raise Http404("No such engagement.")
    zone = ZoneInfo(selectors.engineer_zone(engagement.engineer_id))
    form = TimeEntryForm(request.POST or None, initial={"day": timezone.now().astimezone(zone).date()})
    if request.method == "POST" and user.pk == engagement.engineer_id and form.is_valid():
        data = form.cleaned_data
        started_at = datetime.combine(data["day"], data["start"], tzinfo=zone)
        try:
            services.time_entry_log(
                engineer=user,
                engagement_id=engagement.pk,
                started_at=started_at,
                minutes=data["minutes"],
                note=data["note"],
            )
        except DomainError as error:
            refuse(form, error, fields={"started_at": "day"})
        else:
            messages.success(request, "Logged.")
            return redirect("web:timesheets", engagement_id=engagement.pk)
    this_week = services.week_start_of(timezone.now())
    context = {
        "e": engagement,
        "is_client": user.pk == engagement.client_id,
        "weeks": list(weeks.prefetch_related("entries")[:12]),
        "billing": selectors.billing_for(user=user, engagement_id=engagement.pk),
        "form": form,
        "cap_hours": services.weekly_cap_hours(engagement, this_week),
        "zone": zone,
    }
    if request.headers.get("HX-Request"):
        return render(request, "web/_weeks.html", context)
    return render(request, "web/timesheets.html", context, status=422 if form.errors else 200)


@require_POST
@login_required
def timesheet_dispute(request: HttpRequest, timesheet_id: int) -> HttpResponse:
    """Dispute the ticked entries of a submitted week, each with the one reason given; staff settle it."""
    user = user_of(request)
    timesheet = _timesheet(user, timesheet_id)
    reason = (request.POST.get("reason") or "").strip()[:500]
    ids = request.POST.getlist("entry")
    if not all(_ID.fullmatch(entry) for entry in ids):
        messages.error(request, "Tick the entries to dispute.")
        return redirect("web:timesheets", engagement_id=timesheet.engagement_id)
    entries = [(int(entry), reason) for entry in ids]
    try:
        services.timesheet_dispute(client=user, timesheet_id=timesheet.pk, entries=entries)
    except DomainError as error:
        refused(request, error)
    return redirect("web:timesheets", engagement_id=timesheet.engagement_id)


async def _client(request: HttpRequest) -> User:
    user = await request.auser()
    if not isinstance(user, User):
        raise Http404()
    return user


@require_POST
@login_required
async def timesheet_approve(request: HttpRequest, timesheet_id: int) -> HttpResponse:
    """Approve the week: it is charged to the saved card off-session, and paid out."""
    user = await _client(request)
    timesheet = await atomic_phase(_timesheet)(user, timesheet_id)
    try:
        done = await within_deadline(services.atimesheet_approve(client=user, timesheet_id=timesheet.pk))
    except DomainError as error:
        await sync_to_async(refused)(request, error)
    else:
        messages.success(request, f"Approved: the week is {done.get_status_display().lower()}.")
    return redirect("web:timesheets", engagement_id=timesheet.engagement_id)


@require_POST
@login_required
async def timesheet_pay_now(request: HttpRequest, timesheet_id: int) -> HttpResponse:
    """Charge a week whose charge failed again, now, on the saved card."""
    user = await _client(request)
    timesheet = await atomic_phase(_timesheet)(user, timesheet_id)
    try:
        await within_deadline(services.atimesheet_pay_now(client=user, timesheet_id=timesheet.pk))
    except DomainError as error:
        await sync_to_async(refused)(request, error)
    return redirect("web:timesheets", engagement_id=timesheet.engagement_id)


@require_POST
@login_required
@csp_override(settings.STRIPE_PAGE_CSP)
async def card_setup(request: HttpRequest, engagement_id: int) -> HttpResponse:
    """A SetupIntent for off-session charges, confirmed in this page by the Payment Element (Stripe.js confirmSetup);
    `setup_intent.succeeded` starts (or resumes) the engagement's billing."""
    user = await _client(request)
    try:
        setup = await within_deadline(services.apayment_method_setup(client=user, engagement_id=engagement_id))
    except DomainError as error:
        if error.status == 404:
            raise Http404(error.detail) from None
        await sync_to_async(refused)(request, error)
        return redirect("web:engagement", engagement_id=engagement_id)
    context = {
        "engagement_id": engagement_id,
        "client_secret": setup.client_secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js": settings.STRIPE_JS_URL,
        "return_url": request.build_absolute_uri(reverse("web:card-saved", args=[engagement_id])),
    }
    return await sync_to_async(render)(request, "web/card.html", context)


@login_required
def card_saved(request: HttpRequest, engagement_id: int) -> HttpResponse:
    """Where Stripe sends the browser back; active once the webhook has arrived, which the page waits for."""
    billing = selectors.billing_for(user=user_of(request), engagement_id=engagement_id)
    if billing is None:
        raise Http404("No such engagement.")
    if billing.status == "active" or not billing.setup_client_secret:  # saved, or nothing to wait for
        if billing.status == "active":
            messages.success(request, f"Card ending {billing.card_last4} saved: each approved week is charged to it.")
        back = reverse("web:timesheets", args=[engagement_id])
        return HttpResponseClientRedirect(back) if request.headers.get("HX-Request") else redirect(back)
    return render(request, "web/card_saved.html", {"billing": billing, "engagement_id": engagement_id})
