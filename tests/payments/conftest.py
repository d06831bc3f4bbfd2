import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
import uvicorn

from stripe_double import StripeDouble
from stripe_double.app import read_body
from tests.processes import free_port, wait_until

SECRET = "whsec_test_secret"


@dataclass
class Collector:
    """A webhook endpoint that records what it receives; `status` decides what it answers."""

    received: list[tuple[bytes, str]] = field(default_factory=list)
    status: int = 200

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        signature = dict(scope["headers"]).get(b"stripe-signature", b"").decode()
        self.received.append((body, signature))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]


class Served:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="the server to start")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        # Keep-alive connections from the test's clients would hold a graceful shutdown open.
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)


@dataclass
class DoubleRun:
    double: StripeDouble
    base: str
    collector: Collector
    client: stripe.StripeClient

    def drain(self) -> None:
        """Wait for queued webhooks to be sent, on the double's own loop."""
        loop = self.double._sender.get_loop() if self.double._sender else None
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self.double.drain(), loop).result(timeout=15)


@pytest.fixture
def stripe_double() -> Iterator[DoubleRun]:
    collector = Collector()
    with Served(collector) as hook_base:
        double = StripeDouble(webhook_url=f"{hook_base}/hook", webhook_secret=SECRET, retry_delays=(0.05, 0.1))
        with Served(double) as base:
            double.public_url = base
            client = stripe.StripeClient(
                "sk_test_double",
                base_addresses={"api": base},
                http_client=stripe.HTTPXClient(allow_sync_methods=True),
                max_network_retries=0,
            )
            yield DoubleRun(double, base, collector, client)


@pytest.fixture
def stripe_settings(settings, stripe_double):
    """The service's gateway pointed at this test's double, with a fresh breaker."""
    from payments import gateway

    settings.STRIPE_API_BASE = stripe_double.base
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_RETRY_ATTEMPTS = 2
    gateway.reset()
    yield stripe_double
    gateway.reset()


def deliver_webhooks(run: DoubleRun, client) -> list[Any]:
    """Forward what the double sent, byte for byte with its signature, to our endpoint; then process it."""
    from payments import services
    from payments.models import StripeEvent

    run.drain()
    responses = []
    for body, signature in run.collector.received:
        response = client.post(
            "/api/payments/stripe/webhook", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
        responses.append(response)
    run.collector.received.clear()
    for event in StripeEvent.objects.filter(processed_at=None).order_by("pk"):
        services.stripe_event_process(event_id=event.pk)
    return responses


@pytest.fixture
def staff(db):
    from tests.factories import StaffFactory

    return StaffFactory.create()
