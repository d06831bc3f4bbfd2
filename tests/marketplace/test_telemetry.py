"""Traces: what becomes a span, which spans share a trace, and that nothing is traced without an endpoint."""

import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from accounts.services import api_token_create
from hiring_requests import services as hiring_services
from marketplace import telemetry
from marketplace.asgi import application  # imported once, here: it sets up Django, and with it logging, again
from marketplace.celery import app as celery_app
from marketplace.tracing import RequestIdFilter
from payments import services as payment_services
from payments.models import Milestone
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from tests.payments.conftest import stripe_double, stripe_settings  # noqa: F401 - fixtures used below
from tests.payments.helpers import engagement, milestone, pay_at_stripe

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for one test: instrumented with a provider of the test's own."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.install(provider)
    try:
        yield exporter
    finally:
        telemetry.uninstall()
        provider.shutdown()


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


class Answer:
    def __init__(self, message: dict[str, Any]) -> None:
        self.status_code: int = message["status"]
        self.headers: dict[str, str] = {name.decode().lower(): value.decode() for name, value in message["headers"]}

    def __getitem__(self, header: str) -> str:
        return self.headers[header.lower()]


def asgi(method: str, path: str, *, body: bytes = b"", **headers: str) -> Answer:
    """One request through the server's whole ASGI application (where its span opens), not only Django's handler.

    Django's request_finished closes the connection, so a test using this needs `transaction=True`.
    """
    headers = {"host": "testserver", **headers}
    pairs = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    communicator = HttpCommunicator(application, method, path, body=body, headers=pairs)
    return Answer(async_to_sync(communicator.get_response)(timeout=30))


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def ancestors(span: ReadableSpan, finished: tuple[ReadableSpan, ...]) -> list[str]:
    """The names of the span's parent, its parent's parent, and so on, among the finished spans."""
    by_id = {other.context.span_id: other for other in finished if other.context is not None}
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


@pytest.mark.django_db(transaction=True)
def test_an_incoming_traceparent_is_the_parent_of_the_server_span(spans):
    response = asgi("GET", "/health/live", traceparent=TRACEPARENT, x_request_id="req-otel-1")

    (server,) = [span for span in spans.get_finished_spans() if span.kind is trace.SpanKind.SERVER]
    assert hex_trace(server) == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID
    assert server.attributes is not None
    assert server.attributes["vetted.request_id"] == "req-otel-1"
    assert response["X-Request-ID"] == "req-otel-1"
    assert server.name == "GET /health/live"
    assert server.attributes["http.route"] == "/health/live"


@pytest.mark.django_db(transaction=True)
def test_without_a_traceparent_a_request_starts_its_own_trace(spans):
    asgi("GET", "/health/live")

    (server,) = [span for span in spans.get_finished_spans() if span.kind is trace.SpanKind.SERVER]
    assert server.parent is None
    assert hex_trace(server) != TRACE_ID


@pytest.mark.django_db(transaction=True)
def test_raise_matching_task_and_invitation_push_share_one_trace(spans, eager_tasks, rubric):
    engineer = vetted_engineer()
    client_user = ClientFactory.create()
    draft = hiring_services.request_create(client=client_user, fields=request_fields())
    _, token = api_token_create(user=client_user, name="http")
    spans.clear()

    response = asgi("POST", f"/api/requests/{draft.pk}/raise", authorization=f"Bearer {token}", traceparent=TRACEPARENT)

    assert response.status_code == 200
    finished = spans.get_finished_spans()
    (server,) = [span for span in finished if span.kind is trace.SpanKind.SERVER]
    (run,) = named(finished, "run/hiring_requests.tasks.match_request")
    pushes = named(finished, "notification.push")
    engineer_group = f"user.{engineer.pk}"
    (invitation_push,) = [
        span for span in pushes if span.attributes and span.attributes["messaging.destination.name"] == engineer_group
    ]
    assert {hex_trace(span) for span in finished} == {TRACE_ID}
    assert invitation_push.attributes is not None
    assert invitation_push.attributes["vetted.notification.events"] == ("invitation.created",)
    assert invitation_push.parent is not None
    assert run.context is not None
    assert invitation_push.parent.span_id == run.context.span_id
    assert run.attributes is not None
    assert run.attributes["vetted.request_id"] == response["X-Request-ID"]
    assert server.attributes is not None
    assert server.attributes["vetted.request_id"] == response["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_a_stripe_webhook_its_task_and_the_milestone_notification_share_one_trace(
    spans,
    eager_tasks,
    rubric,
    stripe_settings,  # noqa: F811 - the fixture imported above
):
    made = engagement()
    created = milestone(made)
    payment_services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(stripe_settings, created)
    stripe_settings.drain()
    body, signature = next(r for r in stripe_settings.collector.received if b"payment_intent.succeeded" in r[0])
    spans.clear()

    response = asgi(
        "POST",
        "/api/payments/stripe/webhook",
        body=body,
        content_type="application/json",
        stripe_signature=signature,
        traceparent=TRACEPARENT,
    )

    assert response.status_code == 200
    assert Milestone.objects.get(pk=created.pk).status == "funded"
    finished = spans.get_finished_spans()
    pushes = [
        span
        for span in named(finished, "notification.push")
        if span.attributes and "milestone.changed" in span.attributes["vetted.notification.events"]  # type: ignore[operator]
    ]
    (server,) = named(finished, "POST /api/payments/stripe/webhook")
    (run,) = named(finished, "run/payments.tasks.process_stripe_event")
    assert {hex_trace(span) for span in [server, run, *pushes]} == {TRACE_ID}
    assert pushes
    for push in pushes:
        assert "run/payments.tasks.process_stripe_event" in ancestors(push, finished)
        assert ancestors(push, finished)[-1] == "POST /api/payments/stripe/webhook"


@pytest.mark.django_db
def test_a_stripe_call_is_a_client_span_of_the_work_that_made_it(
    spans,
    rubric,
    stripe_settings,  # noqa: F811 - the fixture imported above
):
    made = engagement()
    created = milestone(made)
    spans.clear()

    with telemetry.tracer().start_as_current_span("fund"):
        payment_services.milestone_fund(client=made.client, milestone_id=created.pk)

    finished = spans.get_finished_spans()
    (call,) = [
        span
        for span in finished
        if span.kind is trace.SpanKind.CLIENT and "/v1/payment_intents" in str((span.attributes or {}).get("http.url"))
    ]
    assert call.attributes is not None
    assert (call.attributes["http.method"], call.attributes["http.status_code"]) == ("POST", 200)
    assert ancestors(call, finished)[-1] == "fund"


@pytest.mark.django_db(transaction=True)
def test_queries_are_spans_of_the_request(spans):
    asgi("GET", "/health/ready")

    finished = spans.get_finished_spans()
    (server,) = [span for span in finished if span.kind is trace.SpanKind.SERVER]
    queries = [span for span in finished if span.attributes and span.attributes.get("db.system") == "postgresql"]
    assert queries
    assert {hex_trace(span) for span in queries} == {hex_trace(server)}


def test_log_records_carry_the_current_trace_and_span_ids(spans):
    record = logging.LogRecord("vetting", logging.INFO, __file__, 1, "application.moved", (), None)

    with telemetry.tracer().start_as_current_span("work") as span:
        RequestIdFilter().filter(record)

    context = span.get_span_context()
    assert (vars(record)["trace_id"], vars(record)["span_id"]) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )


def test_log_records_outside_a_span_say_so():
    record = logging.LogRecord("vetting", logging.INFO, __file__, 1, "application.moved", (), None)

    RequestIdFilter().filter(record)

    assert (vars(record)["trace_id"], vars(record)["span_id"]) == ("-", "-")


def test_without_an_endpoint_nothing_is_traced(settings):
    settings.OTEL_EXPORTER_OTLP_ENDPOINT = None

    provider = telemetry.setup(default_service_name="vetted-web")

    assert provider is None
    assert not telemetry.enabled()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not any("opentelemetry" in middleware for middleware in settings.MIDDLEWARE)
    assert not telemetry.tracer().start_span("work").get_span_context().is_valid


def test_by_default_one_trace_in_ten_is_sampled_and_a_sampled_caller_always_is(settings):
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    chosen = telemetry.sampler(settings.OTEL_TRACES_SAMPLER, settings.OTEL_TRACES_SAMPLER_ARG)
    rng = random.Random(7)
    roots = [chosen.should_sample(None, rng.getrandbits(128), "GET /api/me").decision for _ in range(10_000)]

    def under(flags: int) -> Decision:
        parent = SpanContext(trace_id=rng.getrandbits(128), span_id=1, is_remote=True, trace_flags=TraceFlags(flags))
        context = set_span_in_context(NonRecordingSpan(parent))
        return chosen.should_sample(context, parent.trace_id, "POST raise").decision

    assert (settings.OTEL_TRACES_SAMPLER, settings.OTEL_TRACES_SAMPLER_ARG) == ("parentbased_traceidratio", 0.1)
    assert 800 < roots.count(Decision.RECORD_AND_SAMPLE) < 1_200  # a tenth of 10,000, give or take
    assert all(under(TraceFlags.SAMPLED) == Decision.RECORD_AND_SAMPLE for _ in range(100))
    assert all(under(TraceFlags.DEFAULT) == Decision.DROP for _ in range(100))


def test_everything_is_traced_when_the_operator_asks():
    from opentelemetry.sdk.trace.sampling import Decision

    chosen = telemetry.sampler("parentbased_always_on", 0.1)

    assert all(chosen.should_sample(None, n + 1, "x").decision == Decision.RECORD_AND_SAMPLE for n in range(100))


@pytest.mark.django_db(transaction=True)
def test_a_500_is_an_error_span_with_its_exception_and_django_logs_it_in_the_trace(spans, monkeypatch, caplog):
    from accounts import api as accounts_api

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(accounts_api, "_me", broken)
    _, token = api_token_create(user=ClientFactory.create(), name="http")

    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = asgi("GET", "/api/me", authorization=f"Bearer {token}", traceparent=TRACEPARENT)

    assert response.status_code == 500
    (server,) = [span for span in spans.get_finished_spans() if span.kind is trace.SpanKind.SERVER]
    assert server.name == "GET /api/me"
    assert server.status.status_code is trace.StatusCode.ERROR
    assert [event.attributes["exception.type"] for event in server.events if event.attributes] == ["RuntimeError"]
    (line,) = [record for record in caplog.records if record.name == "django.request"]
    # Stamped while it was written, by the RequestIdFilter of the handler LOGGING configures.
    assert (vars(line)["trace_id"], vars(line)["request_id"]) == (TRACE_ID, response["X-Request-ID"])


class DropAndRemember(Sampler):
    """Samples nothing, and remembers the name of every span it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        self.asked.append(name)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "DropAndRemember"


@pytest.mark.django_db(transaction=True)
def test_an_unsampled_request_records_nothing_makes_no_query_spans_yet_answers_as_always():
    exporter = InMemorySpanExporter()
    sampler = DropAndRemember()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.install(provider)
    try:
        response = asgi("GET", "/health/ready", x_request_id="req-unsampled")
    finally:
        telemetry.uninstall()
        provider.shutdown()

    assert (response.status_code, response["X-Request-ID"]) == (200, "req-unsampled")
    assert exporter.get_finished_spans() == ()
    # The readiness check queries PostgreSQL and Redis; only the server span was ever considered.
    assert sampler.asked == ["GET"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "name", "kept"),
    [
        ("/api/requests/12345?email=bob@example.com&token=secret123", "GET /api/requests/<request_id>", None),
        ("/nope/alice@example.com/vt_SECRET", "GET", "unmatched"),
        ("/", "GET /", "/"),
    ],
)
def test_a_span_keeps_the_route_never_the_url_the_client_sent(spans, path, name, kept):
    asgi("GET", path)

    (server,) = [span for span in spans.get_finished_spans() if span.kind is trace.SpanKind.SERVER]
    assert server.name == name
    assert server.attributes is not None
    recorded = " ".join(str(value) for value in server.attributes.values())
    for secret in ("12345", "bob@example.com", "secret123", "alice@example.com", "vt_SECRET"):
        assert secret not in recorded
    assert server.attributes["http.target"] == (kept or name.split(" ", 1)[1])


@pytest.mark.django_db(transaction=True)
def test_a_junk_tracestate_is_ignored_and_never_quoted_in_the_logs(spans, caplog):
    caplog.set_level("INFO")
    response = asgi("GET", "/health/live", traceparent=TRACEPARENT, tracestate="caller-chosen-text")

    assert response.status_code == 200
    (server,) = [span for span in spans.get_finished_spans() if span.kind is trace.SpanKind.SERVER]
    assert hex_trace(server) == TRACE_ID  # the traceparent still counts
    assert not [record for record in caplog.records if "caller-chosen-text" in record.getMessage()]


def test_a_query_outside_any_request_or_task_starts_no_trace():
    """The connection pool checks and sets up connections on its own threads; those calls are no one's."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from marketplace.telemetry import WithoutOrphanCalls

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=WithoutOrphanCalls(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    tracer.start_span("SELECT 1", kind=trace.SpanKind.CLIENT).end()
    with tracer.start_as_current_span("GET /api/me", kind=trace.SpanKind.SERVER):
        tracer.start_span("SELECT", kind=trace.SpanKind.CLIENT).end()
    tracer.start_span("run/payments.tasks.sweep", kind=trace.SpanKind.CONSUMER).end()

    assert sorted(span.name for span in exporter.get_finished_spans()) == [
        "GET /api/me",
        "SELECT",
        "run/payments.tasks.sweep",
    ]
