"""One id per request, carried wherever the work goes: logs, Celery tasks, websocket sessions.

An incoming `X-Request-ID` is kept (when it looks like an id), otherwise one is
made. It is echoed in the response, attached to every log record as
`request_id`, and sent with every Celery task the request enqueues, so a wave
of invitations can be followed from the HTTP raise to the worker's log lines.
"""

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from celery.signals import before_task_publish, task_postrun, task_prerun
from django.http import HttpRequest, HttpResponseBase
from opentelemetry import trace
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_id() -> str:
    return uuid.uuid4().hex


def accept_or_new(candidate: str | None) -> str:
    """Keep a caller's id if it is a plain token of at most 64 characters; otherwise make one."""
    return candidate if candidate and _VALID.match(candidate) else new_id()


def _take(request: HttpRequest) -> str:
    # Kept on the request too: Django logs a 4xx/5xx (`log_response`) after every middleware has
    # returned, when the context's id is gone, with the request in the record (RequestIdFilter).
    request.request_id = accept_or_new(request.headers.get(HEADER))  # type: ignore[attr-defined]
    # The request's server span (marketplace.telemetry), when tracing is on; a no-op span otherwise.
    trace.get_current_span().set_attribute("vetted.request_id", request.request_id)  # type: ignore[attr-defined]
    return str(request.request_id)  # type: ignore[attr-defined]


def route_of(request: HttpRequest) -> str:
    """The Django route pattern that answered, as a path (`/api/requests/<request_id>`, `/` for the
    landing page), or `unmatched` for a URL no route took. Never the URL itself, which carries ids."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route is not None else "unmatched"


# What the client sent as the URL can carry ids, emails, search terms and the unsubscribe link's signed
# token; a sampled span keeps the route in their place (OpenTelemetry records them at the ASGI layer).
_REQUEST_TARGETS = ("http.target", "http.url", "url.path", "url.query", "url.full")


def _name_span(request: HttpRequest) -> None:
    """Name the request's server span `<METHOD> <route>` (`route_of`, also `http.route`), when it is sampled,
    and put the route in place of the URL the ASGI layer recorded.

    marketplace.telemetry opens the span at the ASGI layer, before any URL is
    resolved; the name follows OpenTelemetry's HTTP conventions
    (https://opentelemetry.io/docs/specs/semconv/http/http-spans/#name).
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    route = route_of(request)
    recorded = getattr(span, "attributes", None) or {}
    for key in _REQUEST_TARGETS:
        if key in recorded:
            span.set_attribute(key, route)
    if route != "unmatched":
        span.update_name(f"{request.method} {route}")
        span.set_attribute(HTTP_ROUTE, route)


class RequestIdMiddleware:
    """Django middleware, sync and async: set the id for the request, echo it in the response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = request_id.set(_take(request))
        try:
            response: HttpResponseBase = self.get_response(request)
            response[HEADER] = request_id.get() or ""
            _name_span(request)
            return response
        finally:
            request_id.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = request_id.set(_take(request))
        try:
            get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await get_response(request)
            response[HEADER] = request_id.get() or ""
            _name_span(request)
            return response
        finally:
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current id on every record (`-` outside a request or task), and the current span's
    `trace_id` (32 hex digits) and `span_id` (16 hex digits), `-` when tracing is off or no span is open.

    Django's own lines about a request (`Internal Server Error: /api/...`) are written after
    the middleware has returned; they carry the request itself, whose id is used then.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from_request = getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = request_id.get() or from_request or "-"
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else "-"
        record.span_id = format(span.span_id, "016x") if span.is_valid else "-"
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "trace_id",
    "span_id",
}


class EventFormatter(logging.Formatter):
    """`time level logger event key=value ...`: the event name, then whatever was passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in vars(record).items() if key not in _STANDARD)
        suffix = f" request_id={getattr(record, 'request_id', '-')}"
        trace_id = getattr(record, "trace_id", "-")
        if trace_id != "-":
            suffix += f" trace_id={trace_id} span_id={getattr(record, 'span_id', '-')}"
        if extras:
            suffix = f" {extras}{suffix}"
        head, sep, trace = line.partition("\n")
        return f"{head}{suffix}{sep}{trace}"


class JsonEventFormatter(JsonFormatter):
    """One JSON object per line (LOG_FORMAT=json): `time` (ISO 8601, UTC), `level`, `logger`,
    `event`, `request_id`, `trace_id`, `span_id`, then whatever was passed in `extra`; a traceback goes
    in `exc_info`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("format", None)
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s %(trace_id)s %(span_id)s",
            rename_fields={"levelname": "level", "name": "logger", "message": "event"},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, "request"],
        )


@before_task_publish.connect(dispatch_uid="tracing.publish")
def _send_id_with_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers[TASK_HEADER] = request_id.get() or new_id()


_task_tokens: dict[str, Any] = {}


@task_prerun.connect(dispatch_uid="tracing.prerun")
def _take_id_in_worker(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    incoming = getattr(task.request, TASK_HEADER, None) if task is not None else None
    # A task applied in-process (`apply()`, eager mode) was never published: it keeps the caller's id.
    incoming = incoming or request_id.get()
    if task_id is not None:
        _task_tokens[task_id] = request_id.set(accept_or_new(incoming))


@task_postrun.connect(dispatch_uid="tracing.postrun")
def _drop_id_after_task(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        request_id.reset(token)
