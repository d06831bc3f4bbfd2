"""Traces (OpenTelemetry): one trace from an HTTP request through its Celery tasks to the websocket push.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then nothing is instrumented
and the API's default no-op tracer provider stays in place, so a span costs a
function call. On, each server process (marketplace.asgi) and each worker
process (marketplace.celery) calls `setup` once: spans for Django requests
(an incoming W3C `traceparent` is their parent), Celery publish and run (the
context travels in the task's headers), psycopg queries, redis commands and
httpx calls (Stripe's client is httpx), plus our own `notification.push`. They
are batched and sent over OTLP/HTTP to `<endpoint>/v1/traces`
(https://opentelemetry.io/docs/specs/otel/protocol/exporter/). By default one trace in ten
is recorded, plus every trace a caller's sampled `traceparent` asks for
(`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).

`install` takes any provider, which is how tests collect spans in memory.
"""

import contextvars
import logging
from typing import Any

from celery.signals import task_prerun
from django.conf import settings
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

from marketplace.tracing import request_id

logger = logging.getLogger(__name__)

REQUEST_ID_ATTRIBUTE = "vetted.request_id"


class _Installed:
    provider: trace.TracerProvider | None = None


_installed = _Installed()
_instrumentors = (
    DjangoInstrumentor(),
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


def setup(*, default_service_name: str) -> TracerProvider | None:
    """Turn tracing on for this process if `OTEL_EXPORTER_OTLP_ENDPOINT` is set; returns the provider, or None.

    Call once per process, before Django's handler is built (the Django
    instrumentation adds a middleware to MIDDLEWARE) and after any fork (the
    batch processor's thread does not cross one). A second call does nothing.
    """
    if _installed.provider is not None or not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = settings.OTEL_SERVICE_NAME or default_service_name
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name}),
        sampler=sampler(settings.OTEL_TRACES_SAMPLER, settings.OTEL_TRACES_SAMPLER_ARG),
    )
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    # Global too, so that any library asking the API for a tracer reports to the same place.
    trace.set_tracer_provider(provider)
    install(provider)
    logger.info("tracing.on", extra={"service": name, "endpoint": endpoint})
    return provider


def install(provider: trace.TracerProvider) -> None:
    """Instrument Django, Celery, psycopg, redis and httpx, reporting to `provider`."""
    _installed.provider = provider
    for instrumentor in _instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    _httpx.instrument(tracer_provider=provider)
    # After the Celery instrumentation's own receiver, so the task's span is current by then.
    task_prerun.connect(_tag_task_span, dispatch_uid="telemetry.task_request_id")


def uninstall() -> None:
    """Undo `install` (tests); the global provider, if `setup` set one, stays."""
    task_prerun.disconnect(dispatch_uid="telemetry.task_request_id")
    _httpx.uninstrument()
    for instrumentor in reversed(_instrumentors):
        instrumentor.uninstrument()
    _installed.provider = None


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
