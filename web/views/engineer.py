"""An engineer's own pages: the profile matching reads, applying for vetting and its stages, payouts."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST

from accounts import services as accounts
from accounts.models import EngineerProfile, User
from accounts.schemas import EngineerProfileIn
from marketplace.errors import DomainError
from payments import selectors as payments
from payments import services as payment_services
from payments.api import within_deadline
from vetting import selectors, services
from vetting.schemas import ApplicationIn
from web.forms import ApplicationForm, ProfileForm, refuse, validate_with
from web.views.common import for_role, refused, user_of


@for_role("engineer")
def profile(request: HttpRequest) -> HttpResponse:
    """The fields an engineer may change (EngineerProfileIn's), checked by the same schema and service as the API."""
    current = EngineerProfile.objects.get(user=user_of(request))
    initial = {
        "headline": current.headline,
        "skills": ", ".join(current.skills),
        "hourly_rate": current.hourly_rate_minor / 100,
        "currency": current.currency,
        "weekly_hours_available": current.weekly_hours_available,
        "time_zone": current.time_zone,
        "years_experience": current.years_experience,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST":
        form.is_valid()
        valid = validate_with(form, EngineerProfileIn, form.as_api(), fields=ProfileForm.SCHEMA_FIELDS)
        if valid is not None and not form.errors:
            try:
                accounts.engineer_profile_update(
                    user=user_of(request), profile_id=current.pk, changes=valid.model_dump(exclude_unset=True)
                )
            except DomainError as error:
                refuse(form, error, fields=ProfileForm.SCHEMA_FIELDS)
            else:
                messages.success(request, "Profile saved: matching uses it from the next request.")
                return redirect("web:profile")
    return render(request, "web/profile.html", {"form": form}, status=422 if form.errors else 200)


@for_role("engineer")
def vetting(request: HttpRequest) -> HttpResponse:
    """Apply for vetting, and follow each application's stage and decision."""
    engineer = user_of(request)
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        links = [line.strip() for line in form.cleaned_data["links"].splitlines() if line.strip()]
        valid = validate_with(
            form, ApplicationIn, {"statement": form.cleaned_data["statement"], "links": links}, fields={}
        )
        if valid is not None:
            try:
                services.application_submit(
                    engineer=engineer,
                    statement=valid.statement,
                    links=[str(link) for link in valid.links],
                    specialty=valid.specialty,
                )
            except DomainError as error:
                refuse(form, error)
            else:
                messages.success(request, "Applied. Staff screen applications within two working days.")
                return redirect("web:vetting")
    context = {
        "form": form,
        "record": selectors.vetted_record_of(engineer=engineer),
        "applications": selectors.applications_of(engineer=engineer).select_related("rubric")[:20],
    }
    return render(request, "web/vetting.html", context, status=422 if form.errors else 200)


@for_role("engineer")
@csp_override(settings.STRIPE_ONBOARDING_PAGE_CSP)
def payouts(request: HttpRequest) -> HttpResponse:
    account = payments.payout_account_of(engineer=user_of(request))
    return render(request, "web/payouts.html", {"account": account})


@require_POST
async def payouts_onboarding(request: HttpRequest) -> HttpResponse:
    """To Stripe's hosted onboarding (an Account Link), which sends the engineer back to the payouts page."""
    engineer = await request.auser()
    if not isinstance(engineer, User) or not engineer.is_engineer:
        return redirect("web:login")
    try:
        url = await within_deadline(
            payment_services.apayout_onboarding_start(
                engineer=engineer, return_url=request.build_absolute_uri(reverse("web:payouts"))
            )
        )
    except DomainError as error:
        refused(request, error)
        return redirect("web:payouts")
    return redirect(url)
