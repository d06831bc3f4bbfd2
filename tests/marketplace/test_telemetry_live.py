"""Traces across real processes: uvicorn and a Celery worker export over OTLP/HTTP to a collector in the test."""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from accounts import services as accounts_services
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from tests.processes import asgi_server, celery_worker, free_port, needs_redis, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the task is published to a real broker, for the worker in another process"),
]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]


def _received(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes: dict[str, object] = {}
                for kv in span.attributes:
                    value = kv.value
                    attributes[kv.key] = getattr(value, value.WhichOneof("value") or "string_value")
                spans.append(
                    Span(
                        service=resource["service.name"],
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=attributes,
                    )
                )
    return spans


@contextmanager
def otlp_collector() -> Iterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP endpoint (protobuf, `/v1/traces`) that keeps what it is sent; yields its base URL and the spans."""
    spans: list[Span] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                spans.extend(_received(body))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()
        server.server_close()


def one(spans: list[Span], *, service: str, name: str) -> Span:
    (found,) = [span for span in spans if span.service == service and span.name == name]
    return found


def test_one_trace_runs_from_the_http_raise_through_the_worker_to_the_invitation_push(rubric, tmp_path):
    engineer = vetted_engineer()
    client_user = ClientFactory.create()
    _, token = accounts_services.api_token_create(user=client_user, name="http")
    queue = f"live-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token}"}

    with otlp_collector() as (endpoint, spans):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100", "CELERY_QUEUE": queue}
        with celery_worker(queue=queue, log_dir=tmp_path, env=env), asgi_server(log_dir=tmp_path, env=env) as base:
            draft = httpx.post(f"{base}/api/requests", json=request_fields(start_date="2099-01-01"), headers=headers)
            raised = httpx.post(
                f"{base}/api/requests/{draft.json()['id']}/raise", headers={**headers, "traceparent": TRACEPARENT}
            )
            wait_until(
                lambda: any(span.name == "notification.push" and span.trace_id == TRACE_ID for span in spans),
                timeout=30,
                what="the worker's push span",
            )
        in_trace = [span for span in spans if span.trace_id == TRACE_ID]

    assert raised.status_code == 200
    server = one(in_trace, service="vetted-web", name="POST /api/requests/<request_id>/raise")
    publish = one(in_trace, service="vetted-web", name="apply_async/hiring_requests.tasks.match_request")
    run = one(in_trace, service="vetted-worker", name="run/hiring_requests.tasks.match_request")
    push = one(in_trace, service="vetted-worker", name="notification.push")
    assert server.parent_span_id == "b7ad6b7169203331"
    assert server.attributes["vetted.request_id"] == raised.headers["X-Request-ID"]
    assert run.parent_span_id == publish.span_id
    assert run.attributes["vetted.request_id"] == raised.headers["X-Request-ID"]
    assert push.parent_span_id == run.span_id
    assert push.attributes["messaging.destination.name"] == f"user.{engineer.pk}"
