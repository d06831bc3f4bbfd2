"""Sign up, log in and out, change password: Django's auth views and accounts.services."""

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.models import Role
from marketplace.errors import DomainError
from web.forms import SignupForm, refuse


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """A client or engineer account, logged in at once; the rules (password strength, one account per email) are
    the service's, as for POST /api/auth/register."""
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                role=Role(form.cleaned_data["role"]),
                full_name=form.cleaned_data["full_name"],
            )
        except DomainError as error:
            refuse(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("web:home")
    return render(request, "web/signup.html", {"form": form}, status=422 if form.errors else 200)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "web/account.html")
