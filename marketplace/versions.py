"""Dated API versions an integrator can pin with the `Vetted-Version` header, as Stripe does.

A request may send `Vetted-Version: 2026-11-30`; one without the header gets the current
version. Every response under /api/ says in the same header which version answered it. A
version the API does not know is refused with 400 `unknown_api_version` before any view
runs, so nothing is changed. A change that would break a client gets a new dated version
here, and code that must answer older clients the old way branches on
`api_version(request)` (dates in ISO form compare as strings). docs/api.md, "Versioning",
keeps the changelog; a test checks that it names every version listed here.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from marketplace.errors import DomainError

HEADER = "Vetted-Version"

# Oldest first; the last one is the current version. Never remove one a client may still pin.
VERSIONS: tuple[str, ...] = ("2026-11-30",)
CURRENT = VERSIONS[-1]


class UnknownApiVersion(DomainError):
    code = "unknown_api_version"
    status = 400
    default_detail = "Unknown Vetted-Version: send a dated version that docs/api.md lists, or none for the current one."


def api_version(request: HttpRequest) -> str:
    """The dated version this request is answered in (`"2026-11-30"`); the current one outside /api/."""
    return str(getattr(request, "api_version", CURRENT))


class ApiVersionMiddleware(MiddlewareMixin):
    """Under /api/: read `Vetted-Version`, refuse an unknown one (400), and name the version on every response.

    Sits outside ApiErrorsMiddleware, so the JSON errors Django itself produces (404, 405,
    415, 500) carry the header too.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        asked = request.headers.get(HEADER, CURRENT).strip()
        if asked not in VERSIONS:
            refused = UnknownApiVersion(
                f"Unknown Vetted-Version: send one of {', '.join(VERSIONS)}, or none for the current one."
            )
            return JsonResponse({"code": refused.code, "detail": refused.detail}, status=refused.status)
        request.api_version = asked  # type: ignore[attr-defined]
        return None

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if request.path.startswith("/api/"):
            response[HEADER] = api_version(request)
        return response


def document_versioning(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare versioning in an OpenAPI document (a dict, changed in place and returned).

    `info.version` is the current dated version; every operation takes the optional
    `Vetted-Version` request header, may answer 400 `unknown_api_version` (the Error
    schema), and every response it declares carries the header.
    """
    schema.setdefault("info", {})["version"] = CURRENT
    # Inline, not $ref'd components: every reader (and generator) handles a plain parameter.
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": f"The dated API version to answer in; without it, the current one ({CURRENT}).",
        "schema": {"type": "string", "enum": list(VERSIONS), "default": CURRENT},
    }
    header = {
        "description": "The dated API version that answered.",
        "required": True,
        "schema": {"type": "string", "enum": list(VERSIONS)},
    }
    refused = {
        "description": "The request was refused: an unknown Vetted-Version, or a bad state of the input.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation["parameters"] = [*operation.get("parameters", []), parameter]
            # New dicts, not edits: a response may be a dict the operation's openapi_extra still holds.
            responses = {400: refused, **operation.get("responses", {})}
            operation["responses"] = {
                status: {**response, "headers": {**response.get("headers", {}), HEADER: header}}
                for status, response in sorted(responses.items(), key=lambda item: int(item[0]))
            }
    return schema
