"""The one way tests send a JSON body to the API through Django's test client."""

import json
from typing import TYPE_CHECKING, Any

from django.test import Client

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

_EMPTY: Any = object()


def post_json(client: Client, path: str, body: Any = _EMPTY, **headers: Any) -> "_MonkeyPatchedWSGIResponse":
    """POST `body` as JSON (`{}` when none is given; an explicit None sends `null`).

    `headers` are as Django's test client takes them (`HTTP_IDEMPOTENCY_KEY=...`). Dates and
    other values JSON has no type for are sent as their `str`.
    """
    payload = {} if body is _EMPTY else body
    return client.post(path, json.dumps(payload, default=str), content_type="application/json", **headers)
