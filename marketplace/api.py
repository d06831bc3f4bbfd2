"""The one NinjaAPI: every app's router, one error format, docs at /api/docs."""

from typing import Any

from ninja import Field, NinjaAPI, Schema
from ninja.constants import NOT_SET

from accounts.api import router as accounts_router
from conversations.api import router as conversations_router
from hiring_requests.api import router as hiring_requests_router
from marketplace.errors import install_error_handlers
from marketplace.notifications.api import router as notifications_router
from marketplace.versions import CURRENT, document_versioning
from payments.api import router as payments_router
from vetting.api import router as vetting_router


class VettedAPI(NinjaAPI):
    """The NinjaAPI whose document carries the shared `Error` schema every error response refers to."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in error.pop("$defs", {}).items():
            components[name] = definition
        components["Error"] = error
        return document_versioning(schema)


api = VettedAPI(
    title="Vetted API",
    version=CURRENT,
    description=(
        "Raise a request, get matched with vetted engineers, chat, hire, and pay through escrow.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create one at `POST /api/auth/tokens`) "
        "or a browser session (send the `csrftoken` cookie's value as `X-CSRFToken` on writes). "
        'Every error is `{"code": "...", "detail": "..."}`; `code` is stable.\n\n'
        "Pin a dated version with the `Vetted-Version` header (without it, the current one); every "
        "response names the version that answered. Reads answer with an `ETag`: send it back as "
        "`If-None-Match` and an unchanged object is `304` with no body. Throttled operations report "
        "`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (docs/api.md)."
    ),
    urls_namespace="api",
)
install_error_handlers(api)

api.add_router("/", accounts_router)
api.add_router("/vetting/", vetting_router)
api.add_router("/requests", hiring_requests_router)
api.add_router("/conversations", conversations_router)
api.add_router("/payments/", payments_router)
api.add_router("/notifications", notifications_router)


class FieldErrorOut(Schema):
    field: str = Field(description="The offending field as you spelt it (`title`, `links.0`); empty for the body.")
    message: str


class ErrorOut(Schema):
    """The one error object: `code` is stable (docs/api.md lists every code), `detail` is for people."""

    code: str
    detail: str
    errors: list[FieldErrorOut] | None = Field(default=None, description="Validation errors, one per field.")


_ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
_ERROR_WHY = {
    400: "The request was refused (a bad signature, a bad state of the input).",
    401: "Not authenticated: log in or send an API token.",
    403: "Authenticated, but not allowed (or a missing CSRF token).",
    404: "No such object among those you may see.",
    408: "The request body did not arrive in time.",
    409: "The object's state does not allow this now.",
    413: "The request body is too large.",
    415: "The body is not JSON (Content-Type: application/json).",
    422: "The input broke a rule (docs/api.md, Input rules); `errors` lists each field.",
    429: "Too many attempts; see Retry-After.",
    503: "A dependency is busy or unavailable; nothing changed; see Retry-After.",
}


def _authenticated(operation: Any, router: Any, ninja_api: NinjaAPI) -> bool:
    """Whether the operation asks for credentials: its own auth, else its router's, else the API's."""
    for auth in (operation.auth_param, router.auth, ninja_api.auth):
        if auth is not NOT_SET:
            return bool(auth)
    return False


def declare_error_responses(ninja_api: NinjaAPI) -> None:
    """Declare in the OpenAPI document every error status each operation can answer, as `{"code", "detail"}`.

    Every operation can refuse input (422) and be briefly unavailable (503); one with a
    body can get 408 and 413; one behind authentication 401 and 403; one with a path
    parameter 404; a write 400 and 409; a throttled one 429.
    """
    for _, router in ninja_api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                statuses = {422, 503}
                if _authenticated(operation, router, ninja_api) or path.startswith("/auth/"):
                    statuses |= {401, 403}  # logging in or making a token answers wrong credentials with 401
                if "{" in path:
                    statuses.add(404)
                if set(operation.methods) - {"GET", "HEAD", "OPTIONS"}:
                    statuses |= {400, 403, 404, 408, 409, 413, 415}
                if operation.throttle_objects:
                    statuses.add(429)
                declared = {
                    status: {
                        "description": _ERROR_WHY[status],
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                    }
                    for status in sorted(statuses)
                    if status not in operation.response_models
                }
                extra = dict(operation.openapi_extra or {})
                extra["responses"] = {**declared, **extra.get("responses", {})}
                operation.openapi_extra = extra


declare_error_responses(api)
