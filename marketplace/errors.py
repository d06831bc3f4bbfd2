"""Domain errors and the one place they become HTTP responses.

Every error the API returns has the body `{"code": "...", "detail": "..."}`.
`code` is stable and meant for programs; `detail` is for people and may change.
Apps raise subclasses of `DomainError` from services; views never build error
responses themselves.
"""

import logging
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from marketplace import telemetry

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A refusal the caller can act on. Subclasses set `code` and `status`, and `field` when one input is at fault."""

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    default_detail: ClassVar[str] = "The request could not be carried out."
    # The input field a 422 is about, spelt as the caller sent it ("" for the request as a whole).
    default_field: ClassVar[str] = ""

    def __init__(self, detail: str | None = None, *, field: str | None = None) -> None:
        self.detail = detail or self.default_detail
        self.field = self.default_field if field is None else field
        super().__init__(self.detail)


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    default_detail = "You are not allowed to do this."


class RateLimitUnavailable(DomainError):
    """The rate-limit counters (the cache, Redis in production) cannot be reached, and this limit protects accounts."""

    code = "rate_limit_unavailable"
    status = 503
    default_detail = "This action is briefly unavailable; nothing was changed. Try again in a moment."
    retry_after = 5


class CsrfFailed(DomainError):
    code = "csrf_failed"
    status = 403
    default_detail = "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header."


# An engagement (hiring_requests) the caller is not a side of, or none: payments and reviews answer it alike.
class EngagementNotFound(DomainError):
    code = "engagement_not_found"
    status = 404
    default_detail = "No such engagement of yours."


_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
}
_HTTP_ERROR_DETAILS = {
    400: "The request could not be read.",
    404: "No such endpoint. The API is described at /api/docs.",
    405: "This endpoint does not take that method; the Allow header lists the ones it does.",
    412: "If-Match names no current ETag of this object; GET it again for the current one.",
    413: "The request body is too large.",
    415: "Send the body as JSON, with Content-Type: application/json.",
    500: "Something went wrong on our side; it has been logged.",
}


def _non_json_body(request: HttpRequest) -> bool:
    """A body that carries something and is not JSON (an empty form, as some clients send, carries nothing)."""
    if int(request.META.get("CONTENT_LENGTH") or 0) == 0 or request.content_type == "application/json":
        return False
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        from django.http.multipartparser import MultiPartParserError

        try:
            return bool(request.POST or request.FILES)
        except (MultiPartParserError, ValueError):
            return True  # not even a readable form: certainly not JSON
    return True


class ApiErrorsMiddleware:
    """Under /api/, every error is `{"code", "detail"}` JSON, whatever produced it.

    Django answers some errors before or around the API's own handlers: an unknown
    path (404), a method an endpoint does not take (405), a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE (413), an exception outside a view (500). Their
    HTML bodies are replaced here; headers such as Allow and Retry-After are kept.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and request.method in ("POST", "PUT", "PATCH") and _non_json_body(request):
            return self._json(415)  # every API body is JSON; a form or plain text is refused whole
        response: HttpResponse = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return self._json(response.status_code, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent

        if isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
            return self._json(413)
        if isinstance(exception, DomainError):
            # Raised before ninja's handlers are in play: by a throttle (rate_limit_unavailable), which
            # ninja calls outside its own try.
            return _domain_error_response(exception)
        logger.exception("api.unhandled_error", extra={"path": request.path})
        return self._json(500)

    @staticmethod
    def _json(status: int, original: HttpResponse | None = None) -> HttpResponse:
        from django.http import JsonResponse

        code = _HTTP_ERROR_CODES.get(status, "http_error")
        detail = _HTTP_ERROR_DETAILS.get(status, "The request could not be carried out.")
        response = JsonResponse({"code": code, "detail": detail}, status=status)
        # Keep what the other middleware set (security headers, Allow, Retry-After); only the body changes.
        for header, value in original.items() if original is not None else []:
            if header.lower() not in ("content-type", "content-length"):
                response[header] = value
        return response


def _domain_error_response(exc: DomainError) -> HttpResponse:
    from django.http import JsonResponse

    response = JsonResponse({"code": exc.code, "detail": exc.detail}, status=exc.status)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _error(api: NinjaAPI, request: HttpRequest, status: int, code: str, detail: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"code": code, "detail": detail, **extra}, status=status)


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        # A broken business rule names its field like a schema error does, so a client handles both alike.
        extra = {"errors": [{"field": exc.field, "message": exc.detail}]} if exc.status == 422 else {}
        response = _error(api, request, exc.status, exc.code, exc.detail, **extra)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields = []
        for error in exc.errors:
            # loc starts with where the value came from ("body", "query", ...); a body's next element is
            # the view's parameter name, which means nothing to the caller.
            loc = list(error.get("loc", ()))
            parts = loc[2:] if loc[:1] == ["body"] and len(loc) > 2 else loc[1:]
            location = [str(part) for part in parts]
            fields.append({"field": ".".join(location), "message": error.get("msg", "")})
        summary = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields)
        return _error(api, request, 422, "validation_error", summary or "Invalid input.", errors=fields)

    @api.exception_handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        return _error(api, request, 429, "rate_limited", "Too many attempts; wait a little and try again.")

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return _error(api, request, 401, "not_authenticated", "Log in or send an API token.")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        return _error(api, request, exc.status_code, code, exc.message)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return _error(api, request, 404, "not_found", "Not found.")

    @api.exception_handler(PermissionDenied)
    def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return _error(api, request, 403, "forbidden", str(exc) or Forbidden.default_detail)

    @api.exception_handler(Exception)
    def server_error(request: HttpRequest, exc: Exception) -> HttpResponse:

        from marketplace.db import classify

        # A database guard that fired (lock or statement timeout, an exhausted pool) is a 409 or 503.
        guard = classify(exc)
        if guard is not None:
            return domain_error(request, guard)
        # Never Django's debug page under /api/, not even in development: clients parse JSON.
        logger.exception("api.unhandled_error", extra={"path": request.path})
        telemetry.record_exception(exc)
        return _error(api, request, 500, "server_error", "Something went wrong on our side; it has been logged.")


# Everything the API serves (its routers import their services and errors), and the error modules themselves.
ERROR_MODULES = (
    "marketplace.api",
    "accounts.errors",
    "vetting.errors",
    "hiring_requests.errors",
    "conversations.errors",
    "payments.errors",
    "payments.services",
    "marketplace.errors",
    "marketplace.db",
    "marketplace.idempotency",
    "marketplace.versions",
    "marketplace.notifications.errors",
)


def error_catalogue() -> list[tuple[int, str, str]]:
    """Every domain error the API can answer: (HTTP status, code, default detail), sorted.

    Read from the DomainError subclasses themselves, so docs/api.md's list (which a test
    compares with this) cannot drift from the code.
    """
    import importlib

    for module in ERROR_MODULES:
        importlib.import_module(module)

    def subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    protocol = {(status, code, _HTTP_ERROR_DETAILS.get(status, "")) for status, code in _HTTP_ERROR_CODES.items()} | {
        (401, "not_authenticated", "Log in or send an API token."),
        (408, "request_timeout", "The request body did not arrive in time."),
        (422, "validation_error", "The body or query does not fit the schema; `errors` names each field."),
        (429, "rate_limited", "Too many attempts; wait for Retry-After seconds."),
    }
    by_code = {code: (status, code, detail) for status, code, detail in protocol if detail}
    # A domain error's own words win over the generic ones for the same code.
    by_code |= {error.code: (error.status, error.code, error.default_detail) for error in subclasses(DomainError)}
    return sorted(by_code.values())


def error_catalogue_markdown() -> str:
    """The catalogue as the Markdown table docs/api.md carries between its markers."""
    rows = ["| status | code | meaning |", "|---|---|---|"]
    rows += [f"| {status} | `{code}` | {detail} |" for status, code, detail in error_catalogue()]
    return "\n".join(rows)
