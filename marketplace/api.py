"""The one NinjaAPI: every app's router, one error format, docs at /api/docs."""

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.constants import NOT_SET
from ninja.errors import ValidationError

from accounts.api import router as accounts_router
from conversations.api import router as conversations_router
from hiring_requests.api import router as hiring_requests_router
from marketplace.errors import install_error_handlers
from marketplace.idempotency import honour_idempotency_keys
from marketplace.notifications.api import router as notifications_router
from marketplace.pagination import NEXT_LINK_ATTRIBUTE
from marketplace.versions import CURRENT, document_versioning
from payments.api import router as payments_router
from reviews.api import router as reviews_router
from vetting.api import router as vetting_router

SECURITY_SCHEMES = {
    "TokenAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "For programs: an API token (`vt_...`) from POST /api/auth/tokens. No CSRF token needed.",
    },
    "SessionAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": "sessionid",
        "description": (
            "For browsers: the session cookie from POST /api/auth/login. Writes also send the csrftoken "
            "cookie's value as the X-CSRFToken header (GET /api/auth/csrf)."
        ),
    },
}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _drop_unreferenced(schema: dict[str, Any]) -> None:
    """Drop component schemas no operation reaches: ninja lists query models whose fields it already inlined."""
    components = schema["components"]["schemas"]
    reached: set[str] = set()
    frontier = list(_refs(schema["paths"]))
    while frontier:
        name = frontier.pop()
        if name not in reached and name in components:
            reached.add(name)
            frontier += list(_refs(components[name]))
    for name in set(components) - reached:
        del components[name]


def _header(description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("Requests the window allows (draft-ietf-httpapi-ratelimit-headers).", "integer"),
    "RateLimit-Remaining": _header("Requests left in the window.", "integer"),
    "RateLimit-Reset": _header("Seconds until the window ends.", "integer"),
}


def declare_http_headers(schema: dict[str, Any]) -> None:
    """Declare the HTTP of docs/api.md in the document: `ETag`, `If-None-Match` and `304` on reads,
    `Link` on list pages, `RateLimit-*` on limited operations, `Retry-After` on 429 and 503.

    Changes `schema` (an OpenAPI document as a dict) in place.
    """
    components = schema["components"]["schemas"]
    for operations in schema["paths"].values():
        for method, operation in operations.items():
            responses = operation["responses"]
            limited = "429" in responses or 429 in responses
            for status, response in list(responses.items()):
                headers = dict(response.get("headers", {}))
                if limited:
                    headers |= _RATE_LIMIT_HEADERS
                if int(status) in (429, 503):
                    headers["Retry-After"] = _header("Seconds to wait before trying again.", "integer")
                if method == "get" and int(status) == 200:
                    headers["ETag"] = _header("A strong validator of this body; send it as If-None-Match.")
                    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                    if "next_cursor" in components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}):
                        headers["Link"] = _header('`<next page URL>; rel="next"` when there is one (RFC 8288).')
                responses[status] = {**response, "headers": headers}
            if method == "get":
                responses["304"] = {"description": "Not modified since the ETag sent as If-None-Match (no body)."}
                operation["parameters"] = [
                    *operation.get("parameters", []),
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "description": "An ETag from an earlier answer: 304 with no body if it still matches.",
                        "schema": {"type": "string"},
                    },
                ]


class VettedAPI(NinjaAPI):
    """The NinjaAPI whose document carries the shared `Error` schema, and whose lists send `Link` headers."""

    def get_openapi_operation_id(self, operation: Any) -> str:
        """The view's own name (`milestone_fund`), without its module path; `_view` suffixes dropped."""
        return str(operation.view_func.__name__).removesuffix("_view")

    def create_response(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().create_response(request, *args, **kwargs)
        next_link = getattr(request, NEXT_LINK_ATTRIBUTE, None)
        if next_link is not None:
            response["Link"] = f'<{next_link}>; rel="next"'
        return response

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in error.pop("$defs", {}).items():
            components[name] = definition
        components["Error"] = error
        schema["components"].get("securitySchemes", {}).update(SECURITY_SCHEMES)
        _drop_unreferenced(schema)
        declare_http_headers(schema)
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
api.add_router("/reviews", reviews_router)


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
honour_idempotency_keys(api)


def _query_names(operation: Any) -> frozenset[str]:
    names: set[str] = set()
    for model in operation.models:
        if model.__ninja_param_source__ == "query":
            names.update(model.__ninja_flatten_map__)
    return frozenset(names)


def _refusing_unknown(view: Callable[..., Any], allowed: frozenset[str]) -> Callable[..., Any]:
    def check(request: HttpRequest) -> None:
        unknown = sorted(set(request.GET) - allowed)
        if unknown:
            raise ValidationError(
                [{"loc": ("query", name), "msg": "unknown query parameter", "type": "unknown"} for name in unknown]
            )

    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            check(request)
            return await view(request, *args, **kwargs)

        return async_checked

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        check(request)
        return view(request, *args, **kwargs)

    return checked


def refuse_unknown_query_parameters(ninja_api: NinjaAPI) -> None:
    """Make every operation answer 422 `validation_error`, naming each one, for a query parameter it does not take.

    A misspelt filter (`?stauts=open`) would otherwise be ignored and the caller
    would read the unfiltered list as if it were the answer.
    """
    for _, router in ninja_api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                operation.view_func = _refusing_unknown(operation.view_func, _query_names(operation))


refuse_unknown_query_parameters(api)
