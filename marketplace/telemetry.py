"""Traces (OpenTelemetry): one trace from an HTTP request through its Celery tasks to the websocket push.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then nothing is instrumented
and the API's default no-op tracer provider stays in place, so a span costs a
function call. On, each server process (marketplace.asgi) and each worker
process (marketplace.celery) calls `setup` once: a server span for each HTTP
request, opened at the ASGI layer by `TracedHttp` (an incoming W3C
`traceparent` is its parent) and named by the Django route that answered it
(marketplace.tracing), Celery publish and run (the
context travels in the task's headers), psycopg queries, redis commands and
httpx calls (Stripe's client is httpx), plus our own `notification.push`. They
are batched and sent over OTLP/HTTP to `<endpoint>/v1/traces`
(https://opentelemetry.io/docs/specs/otel/protocol/exporter/). By default one trace in ten
is recorded, plus every trace a caller's sampled `traceparent` asks for
(`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).

`install` takes any provider, which is how tests collect spans in memory.

Why the ASGI layer and not OpenTelemetry's Django middleware: that middleware is
synchronous (Django's MiddlewareMixin), so on an async server its `process_view`
costs every request, sampled or not, a hop to a thread and back, and it resolves the
URL a second time to name the span. Measured in bench/bench_soak.py's "overhead"
part (docs/benchmarks.md, "Soak").
"""

import contextvars
import logging
import sys
from collections.abc import Sequence
from typing import Any, override

from celery.signals import task_prerun
from django.conf import settings
from django.core.signals import got_request_exception
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.util.http import sanitize_method
from opentelemetry.util.types import Attributes

from marketplace.tracing import request_id

logger = logging.getLogger(__name__)

REQUEST_ID_ATTRIBUTE = "vetted.request_id"


class _Installed:
    provider: trace.TracerProvider | None = None


_installed = _Installed()
_instrumentors = (
    CeleryInstrumentor(),  # type: ignore[no-untyped-call]
    PsycopgInstrumentor(),
    RedisInstrumentor(),
)
_httpx = HTTPXClientInstrumentor()


def tracer() -> trace.Tracer:
    """Vetted's own tracer: the installed provider's, else the global one (a no-op while tracing is off)."""
    return (_installed.provider or trace.get_tracer_provider()).get_tracer("vetted")


def enabled() -> bool:
    return _installed.provider is not None


def sampler(name: str, ratio: float) -> Sampler:
    """The head sampler `OTEL_TRACES_SAMPLER` names, as the SDK would build it; `ratio` (0-1) for the ratio ones.

    The names and their meaning are the specification's
    (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
    Raises KeyError for any other name (settings accept only these).
    """
    built: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    return built[name]


class WithoutOrphanCalls(Sampler):
    """`inner`'s decisions, except that a client call (a query, a Redis command, an outgoing HTTP call) with no
    span around it is dropped. Those are the connection pool's own checks and connection set-up, run on its
    threads for no request or task: each would otherwise start a trace of one span."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    @override  # the SDK's Sampler interface fixes the signature
    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is trace.SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WithoutOrphanCalls{{{self.inner.get_description()}}}"


def setup(*, default_service_name: str) -> TracerProvider | None:
    """Turn tracing on for this process if `OTEL_EXPORTER_OTLP_ENDPOINT` is set; returns the provider, or None.

    Call once per process, after any fork (the batch processor's thread does not
    cross one). A second call does nothing.
    """
    if _installed.provider is not None or not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = settings.OTEL_SERVICE_NAME or default_service_name
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name}),
        sampler=WithoutOrphanCalls(sampler(settings.OTEL_TRACES_SAMPLER, settings.OTEL_TRACES_SAMPLER_ARG)),
    )
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    # Global too, so that any library asking the API for a tracer reports to the same place.
    trace.set_tracer_provider(provider)
    install(provider)
    logger.info("tracing.on", extra={"service": name, "endpoint": endpoint})
    return provider


def install(provider: trace.TracerProvider) -> None:
    """Instrument HTTP requests (through `TracedHttp`), Celery, psycopg, redis and httpx, reporting to `provider`."""
    _installed.provider = provider
    for instrumentor in _instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    _httpx.instrument(tracer_provider=provider)
    # After the Celery instrumentation's own receiver, so the task's span is current by then.
    task_prerun.connect(_tag_task_span, dispatch_uid="telemetry.task_request_id")
    got_request_exception.connect(_record_exception, dispatch_uid="telemetry.request_exception")


def uninstall() -> None:
    """Undo `install` (tests); the global provider, if `setup` set one, stays."""
    got_request_exception.disconnect(dispatch_uid="telemetry.request_exception")
    task_prerun.disconnect(dispatch_uid="telemetry.task_request_id")
    _httpx.uninstrument()
    for instrumentor in reversed(_instrumentors):
        instrumentor.uninstrument()
    _installed.provider = None


class TracedHttp:
    """ASGI middleware for the HTTP protocol: OpenTelemetry's ASGI middleware while tracing is installed, else the app.

    Which one is decided per request, so an app built before `install` (as the
    server's is, and the tests') is traced from the request after. The span is
    named by the method alone here, since a path would put ids into span names;
    marketplace.tracing's middleware renames it `<METHOD> <route>` (Django's route
    pattern, as `http.route`) once the URL is resolved, when the span is sampled.
    The ASGI messages are not spans of their own (`exclude_spans`), metrics are
    Prometheus's (marketplace.metrics), not OpenTelemetry's, and an unsampled request
    runs with instrumentation suppressed (`_unsampled_untraced`).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._traced: tuple[trace.TracerProvider, OpenTelemetryMiddleware] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        provider = _installed.provider
        if provider is None:
            await self.app(scope, receive, send)
            return
        if self._traced is None or self._traced[0] is not provider:
            middleware = OpenTelemetryMiddleware(
                _unsampled_untraced(self.app),
                default_span_details=_method_only,
                tracer_provider=provider,
                meter_provider=NoOpMeterProvider(),
                exclude_spans=["receive", "send"],
            )
            self._traced = (provider, middleware)
        await self._traced[1](scope, receive, send)


def _unsampled_untraced(app: Any) -> Any:
    """Run `app` with instrumentation suppressed when the request's span is not sampled.

    An unsampled request's queries and Redis commands would be non-recording spans,
    exported nowhere, yet each costs a span's making and the statement's parsing. Under
    OpenTelemetry's `suppress_instrumentation` the psycopg and redis instrumentations call
    straight through. Celery's still sends the (unsampled) trace context with each task,
    so the task follows the request's decision rather than sampling afresh.
    """

    async def call(scope: Any, receive: Any, send: Any) -> None:
        if trace.get_current_span().is_recording():
            await app(scope, receive, send)
            return
        with suppress_instrumentation():
            await app(scope, receive, send)

    return call


def _method_only(scope: Any) -> tuple[str, dict[str, Any]]:
    method = sanitize_method(str(scope.get("method", "")).strip())
    return ("HTTP" if method == "_OTHER" else method), {}


def record_exception(error: BaseException) -> None:
    """Record an exception that became a 500 on the current span (the request's), when it is sampled.

    Django and the API turn an unhandled exception into a response inside the
    middleware, so the span at the ASGI layer sees only the status (an error
    status for a 5xx, by OpenTelemetry's HTTP conventions); this keeps the
    exception's type, message and stack with it.
    """
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(error)


def _record_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    error = sys.exc_info()[1]
    if error is not None:
        record_exception(error)


def fresh_context() -> contextvars.Context:
    """An empty context but for the current trace context and request id, for work detached from its caller.

    A task created with it shares none of the caller's asgiref state (its thread
    for sync code), yet its spans and log lines still belong to the caller's trace.
    """
    fresh = contextvars.Context()
    fresh.run(otel_context.attach, otel_context.get_current())
    fresh.run(request_id.set, request_id.get())
    return fresh


def _tag_task_span(**kwargs: Any) -> None:
    # marketplace.tracing's receiver has set the task's request id already (it connected first).
    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id.get() or "-")
