"""Error reports to Sentry, when `SENTRY_DSN` is set; otherwise nothing is sent anywhere.

Each report carries the request id (tag `request_id`, as in the logs and the X-Request-ID
header) and, when tracing is on, the trace id (tag `trace_id`), so a report leads to the log
lines and the trace of the same request. https://docs.sentry.io/platforms/python/integrations/django/
"""

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from marketplace.tracing import request_id


def _current_trace_id() -> str | None:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - a dependency; kept optional for this module alone
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def tag_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Sentry's `before_send`: add the request id and trace id of the work that failed as tags."""
    tags = event.setdefault("tags", {})
    current = request_id.get()
    if current:
        tags["request_id"] = current
    trace_id = _current_trace_id()
    if trace_id:
        tags["trace_id"] = trace_id
    return event


def init_error_reports(*, dsn: str | None, environment: str, transport: Any = None) -> bool:
    """Start reporting errors to `dsn`; returns whether it did (False, and nothing set up, without a DSN).

    Personal data stays out (the SDK's default): no cookies, headers or user emails.
    """
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=tag_event,  # type: ignore[arg-type]
        traces_sample_rate=0.0,  # traces go to OpenTelemetry (docs/operations.md, Tracing)
        transport=transport,
    )
    return True
