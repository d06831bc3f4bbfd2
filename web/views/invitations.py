"""An engineer's invitations inbox: the offered terms, accept (or propose a rate), decline, withdraw."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from hiring_requests import selectors, services
from marketplace.errors import DomainError
from web.forms import AcceptForm, ReasonForm, to_minor
from web.views.common import for_role, refused, user_of

INBOX_SIZE = 50


@for_role("engineer")
@vary_on_headers("HX-Request")
def inbox(request: HttpRequest) -> HttpResponse:
    """Newest first; the list part alone when htmx asks (a new invitation arrived on the notification socket)."""
    invitations = selectors.invitations_of(engineer=user_of(request))[:INBOX_SIZE]
    template = "web/_invitations.html" if request.headers.get("HX-Request") else "web/invitations.html"
    return render(request, template, {"invitations": invitations, "accept_form": AcceptForm(), "reason": ReasonForm()})


@require_POST
@for_role("engineer")
def invitation_answer(request: HttpRequest, invitation_id: int, answer: str) -> HttpResponse:
    engineer = user_of(request)
    if answer not in ("accept", "decline", "withdraw"):
        raise Http404("No such answer.")
    try:
        if answer == "accept":
            form = AcceptForm(request.POST)
            if not form.is_valid():  # a rate that is not an amount: say so, accept nothing
                messages.error(request, "The proposed rate must be an amount, like 95.00.")
                return redirect("web:invitations")
            rate = form.cleaned_data.get("rate")
            invitation = selectors.invitations_of(engineer=engineer).filter(pk=invitation_id).first()
            rate_minor = to_minor(rate, invitation.request.currency) if rate and invitation else None
            services.invitation_accept(engineer=engineer, invitation_id=invitation_id, rate_minor=rate_minor)
            messages.success(request, "Accepted: you are on the client's shortlist.")
        else:
            reason = ReasonForm(request.POST)
            if not reason.is_valid():
                messages.error(request, "Say why in a few words.")
                return redirect("web:invitations")
            answer_with = services.invitation_decline if answer == "decline" else services.invitation_withdraw
            answer_with(engineer=engineer, invitation_id=invitation_id, reason=reason.cleaned_data["reason"])
            messages.success(request, "Done: the client has been told.")
    except DomainError as error:
        refused(request, error)
    except ValueError as error:
        messages.error(request, str(error))
    return redirect("web:invitations")
