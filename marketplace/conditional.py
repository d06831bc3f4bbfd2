"""Conditional GET for the JSON API: strong ETags and 304 Not Modified, from Django's own middleware.

A successful (200) GET under /api/ with a JSON body gets `ETag: "<md5 of the body>"`,
a strong validator: the same bytes give the same tag (RFC 9110 §8.8.3). A GET whose
`If-None-Match` lists that tag (or `*`) is answered `304 Not Modified` with no body
and the same ETag, Cache-Control and Vary (RFC 9110 §13.1.2, §15.4.5); the view still
runs, so the saving is the transfer, not the work. Streaming responses, bodies that
are not JSON (the /api/docs page), other statuses and other methods get no ETag.

API answers are per user, so every one says `Cache-Control: private, no-cache` (no
shared cache may store it; a browser must revalidate before reusing it) and
`Vary: Authorization, Cookie, Vetted-Version` (the credentials and the pinned version
choose the body).
"""

from typing import Any

from django.http import HttpRequest
from django.middleware.http import ConditionalGetMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers

from marketplace.versions import HEADER as VERSION_HEADER

VARY = ("Authorization", "Cookie", VERSION_HEADER)


class ApiConditionalGetMiddleware(ConditionalGetMiddleware):
    """Django's ConditionalGetMiddleware, limited to 200 JSON answers under /api/, with per-user caching headers.

    Last in MIDDLEWARE (closest to the view), so the middleware above it adds its
    headers (Vetted-Version, RateLimit-*, security headers) to a 304 as well.
    """

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if not request.path.startswith("/api/"):
            return response
        patch_vary_headers(response, VARY)
        if request.method != "GET":
            return response
        patch_cache_control(response, private=True, no_cache=True)
        if response.streaming or response.status_code != 200 or not _json(response):
            return response
        return super().process_response(request, response)


def _json(response: Any) -> bool:
    return str(response.get("Content-Type", "")).split(";")[0].strip() == "application/json"
