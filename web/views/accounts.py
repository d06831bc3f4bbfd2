"""Sign up, log in and out, change password: Django's auth views and accounts.services."""

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.models import Role
from accounts.schemas import RegisterIn
from marketplace.errors import DomainError
from marketplace.throttling import FixedWindowThrottle
from web.forms import SignupForm, refuse, validate_with
from web.views.common import throttled

# The API's limits (accounts/api.py), counted in the same windows: per address, and per email for logins.
login_view = throttled(
    FixedWindowThrottle("login", "RATE_LIMIT_LOGIN"), FixedWindowThrottle("login", "RATE_LIMIT_LOGIN", key="email")
)(auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True))


@require_http_methods(["GET", "HEAD", "POST"])
@throttled(FixedWindowThrottle("register", "RATE_LIMIT_REGISTER"))
def signup(request: HttpRequest) -> HttpResponse:
    """A client or engineer account, logged in at once; the rules (password strength, one account per email) are
    the service's, as for POST /api/auth/register."""
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignupForm(request.POST or None)
    valid = None
    if request.method == "POST" and form.is_valid():
        valid = validate_with(form, RegisterIn, form.cleaned_data, fields={})
    if valid is not None:
        try:
            user = services.user_register(
                email=valid.email, password=valid.password, role=Role(valid.role), full_name=valid.full_name
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
