from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest
from django.middleware.csrf import get_token
from ninja import Router, Status
from ninja.pagination import paginate

from accounts import selectors, services
from accounts.errors import InvalidCredentials
from accounts.models import ApiToken, Role, User
from accounts.schemas import (
    ClientProfileIn,
    ClientProfileOut,
    CsrfOut,
    EngineerProfileIn,
    EngineerProfileOut,
    LoginIn,
    MeOut,
    RegisterIn,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
)
from marketplace.auth import api_auth, api_auth_with_profiles, current_user, require_csrf
from marketplace.throttling import FixedWindowThrottle

router = Router(tags=["accounts"])


def _me(user: User) -> User:
    """`user` with both profiles: as a token's lookup read them (`GET /api/me`), else read now."""
    return user if selectors.profiles_loaded(user) else selectors.user_with_profiles(user_id=user.pk)


def _check_password(request: HttpRequest, email: str, password: str) -> User:
    user = authenticate(request, username=email.strip().lower(), password=password)
    if not isinstance(user, User):
        raise InvalidCredentials()
    return user


@router.get("/auth/csrf", response=CsrfOut, auth=None, summary="Get a CSRF token (also set as the csrftoken cookie)")
def csrf(request: HttpRequest) -> dict[str, str]:
    return {"csrf_token": get_token(request)}


@router.post(
    "/auth/register",
    response={201: MeOut},
    auth=None,
    throttle=[FixedWindowThrottle("register", "RATE_LIMIT_REGISTER")],
    summary="Create a client or engineer account and log in",
)
def register(request: HttpRequest, payload: RegisterIn) -> Status[User]:
    require_csrf(request)
    user = services.user_register(
        email=payload.email, password=payload.password, role=Role(payload.role), full_name=payload.full_name
    )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return Status(201, _me(user))


@router.post(
    "/auth/login",
    response=MeOut,
    auth=None,
    throttle=[
        FixedWindowThrottle("login", "RATE_LIMIT_LOGIN"),
        FixedWindowThrottle("login", "RATE_LIMIT_LOGIN", key="email"),
    ],
    summary="Log in with email and password (session cookie)",
)
def login_view(request: HttpRequest, payload: LoginIn) -> User:
    require_csrf(request)
    user = _check_password(request, payload.email, payload.password)
    login(request, user)
    return _me(user)


@router.post("/auth/logout", response={204: None}, auth=api_auth, summary="End the browser session")
def logout_view(request: HttpRequest) -> Status[None]:
    logout(request)
    return Status(204, None)


@router.post(
    "/auth/tokens",
    response={201: TokenCreatedOut},
    auth=None,
    throttle=[
        FixedWindowThrottle("token_create", "RATE_LIMIT_TOKEN_CREATE"),
        FixedWindowThrottle("token_create", "RATE_LIMIT_TOKEN_CREATE", key="email"),
    ],
    summary="Create an API token with email and password; the secret is shown once",
)
def token_create(request: HttpRequest, payload: TokenCreateIn) -> Status[dict[str, object]]:
    # No CSRF here: this sets no cookie and returns the secret only to the caller.
    user = _check_password(request, payload.email, payload.password)
    token, raw = services.api_token_create(user=user, name=payload.name)
    return Status(201, {**TokenOut.model_validate(token).model_dump(), "token": raw})


@router.get("/auth/tokens", response=list[TokenOut], auth=api_auth, summary="List my API tokens")
@paginate
def token_list(request: HttpRequest) -> object:
    return selectors.api_tokens_of(user=current_user(request))


@router.delete("/auth/tokens/{token_id}", response=TokenOut, auth=api_auth, summary="Revoke one of my API tokens")
def token_revoke(request: HttpRequest, token_id: int) -> ApiToken:
    return services.api_token_revoke(user=current_user(request), token_id=token_id)


@router.get("/me", response=MeOut, auth=api_auth_with_profiles, summary="Who I am, with my profile")
def me(request: HttpRequest) -> User:
    return _me(current_user(request))


@router.patch(
    "/accounts/client-profiles/{profile_id}",
    response=ClientProfileOut,
    auth=api_auth,
    summary="Edit my client profile",
)
def client_profile_update(request: HttpRequest, profile_id: int, payload: ClientProfileIn) -> object:
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    return services.client_profile_update(user=current_user(request), profile_id=profile_id, changes=changes)


@router.patch(
    "/accounts/engineer-profiles/{profile_id}",
    response=EngineerProfileOut,
    auth=api_auth,
    summary="Edit my engineer profile",
)
def engineer_profile_update(request: HttpRequest, profile_id: int, payload: EngineerProfileIn) -> object:
    changes = payload.model_dump(exclude_unset=True, exclude_none=True)
    return services.engineer_profile_update(user=current_user(request), profile_id=profile_id, changes=changes)
