"""The whole story on live processes: the ASGI server, a Celery worker with beat, the Stripe double,
on PostgreSQL and Redis, with staff, a client and two engineers acting over HTTP and websockets."""

import asyncio
import json
import threading
import uuid
from collections import defaultdict
from typing import Any

import httpx
import pytest
import websockets
from django.conf import global_settings
from django.core.management import call_command

from dev_tools.demo import Story
from payments import gateway
from tests.processes import answers, current_database_url, free_port, needs_redis, running, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the worker's notifications reach websockets only through the Redis channel layer"),
]


class Listener:
    """Websockets held open on a background loop, every frame kept per name."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks: list[Any] = []

    def listen(self, name: str, url: str, token: str) -> None:
        ready = threading.Event()

        async def run() -> None:
            async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
                ready.set()
                async for raw in socket:
                    self.frames[name].append(json.loads(raw))

        self.tasks.append(asyncio.run_coroutine_threadsafe(run(), self.loop))
        assert ready.wait(10), f"{name}'s websocket did not open"

    def events(self, name: str) -> list[str]:
        return [str(frame.get("event") or frame.get("type")) for frame in self.frames[name]]

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)


# The double's own key: its event list answers only a caller that presents one, as Stripe's does.
DOUBLE_KEY = {"Authorization": "Bearer sk_test_double"}


def token_of(actor: Any) -> str:
    return str(actor.http.headers["Authorization"].split(" ", 1)[1])


def test_the_whole_story(rubric, tmp_path, settings):
    # The server checks passwords with the production hashers; seed with those, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    call_command("seed_demo")
    server_port, stripe_port, queue = free_port(), free_port(), f"e2e-{uuid.uuid4().hex[:8]}"
    base, stripe_base = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{stripe_port}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"DATABASE_URL": current_database_url(), "CELERY_QUEUE": queue, "STRIPE_API_BASE": stripe_base}
    # Development's email backend: one file per email under the var directory (here, the test's own).
    env |= {"MAIL_BACKEND": "file", "VETTED_VAR_DIR": str(tmp_path / "var")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # the server and the worker, summed at a scrape
    listener = Listener()
    try:
        with (
            running(
                [
                    "manage.py",
                    "stripe_double",
                    "--port",
                    str(stripe_port),
                    "--webhook-url",
                    f"{base}/api/payments/stripe/webhook",
                ],
                env=env,
                log=tmp_path / "stripe.log",
            ),
            running(
                ["-m", "uvicorn", "marketplace.asgi:application", "--port", str(server_port)],
                env=env,
                log=tmp_path / "server.log",
            ),
            running(
                [
                    "-m",
                    "celery",
                    "-A",
                    "marketplace",
                    "worker",
                    "--beat",
                    "--pool",
                    "solo",
                    "-Q",
                    queue,
                    "--schedule",
                    str(tmp_path / "beat"),
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                env=env,
                log=tmp_path / "worker.log",
            ),
        ):
            wait_until(lambda: b"ready." in (tmp_path / "worker.log").read_bytes(), timeout=60, what="the worker")
            wait_until(lambda: answers(f"{base}/health/ready"), timeout=60, what="the server")
            wait_until(
                lambda: answers(f"{stripe_base}/v1/events", headers=DOUBLE_KEY),
                timeout=30,
                what="the Stripe double",
            )
            story = Story(base_url=base, stripe_base=stripe_base, say=lambda line: None)
            ws = base.replace("http", "ws")

            story.cast()
            story.vet()
            for actor in (story.client, story.first, story.second):
                listener.listen(actor.name, f"{ws}/ws/notifications/", token_of(actor))
            story.raise_request()
            story.accept()
            for engineer in (story.first, story.second):
                conversation = story.client.call("GET", "/api/conversations")["items"]
                conversation_id = next(c["id"] for c in conversation if c["engineer_id"] == engineer.user_id)
                listener.listen(
                    f"chat-{engineer.name}", f"{ws}/ws/conversations/{conversation_id}/", token_of(engineer)
                )
            story.chat()
            story.hire()
            story.pay()
            story.bill_hourly()
            story.review()
            story.next_request()
            wait_until(lambda: "milestone.changed" in listener.events("Client"), timeout=10, what="milestone events")
            # The books, checked against the same Stripe the story paid through.
            settings.STRIPE_API_BASE = stripe_base
            gateway.reset()
            call_command("ledger_check")
            scraped = httpx.get(f"{base}/metrics").text

        assert story.timings["raise_to_invitations_seconds"] < 10
        for name in ("Grace", "Edsger"):
            assert "invitation.created" in listener.events(name)
            chat = [f["message"]["body"] for f in listener.frames[f"chat-{name}"] if f.get("type") == "message"]
            assert any(body.startswith(f"Hi {name}") for body in chat)
            assert "A semaphore per dependency, timeouts on every call." in chat
        assert listener.events("Client").count("shortlist.changed") >= 2
        assert {"engagement.created", "payouts.updated", "milestone.changed"} <= set(listener.events("Grace"))
        assert "request.filled" in listener.events("Edsger")
        statuses = [f["payload"]["status"] for f in listener.frames["Client"] if f.get("event") == "milestone.changed"]
        assert statuses[-1] == "released"
        assert story.transfer["amount"] == 135_000
        assert story.transfer["source_transaction"].startswith("ch_")
        assert (story.billing["status"], story.billing["card_last4"]) == ("active", "4242")
        assert (story.reputation["review_count"], story.reputation["rating_bp"]) == (1, 7_916)
        grace = next(m for m in story.next_matches if m["engineer_id"] == story.first.user_id)
        assert grace["breakdown"]["reputation"] == {"score_bp": 7_916}  # the review counts in the next request
        _assert_the_expected_emails_were_written(story, tmp_path / "var" / "mail")
        _assert_every_family_has_samples(scraped)
    finally:
        listener.close()


def _assert_every_family_has_samples(scraped: str) -> None:
    """After the story, /metrics (the server's and the worker's, summed) shows every family with what it did."""
    from tests.marketplace.test_metrics import FAMILIES

    samples = [line for line in scraped.splitlines() if line and not line.startswith("#")]
    missing = sorted(f for f in FAMILIES if not any(line.startswith(f) for line in samples))
    assert missing == []

    def value(prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in samples if line.startswith(prefix))

    assert value("vetted_raise_to_first_invitation_seconds_count") >= 1  # observed in the worker
    assert (
        value('vetted_celery_task_duration_seconds_count{outcome="success",task="hiring_requests.tasks.match_request"}')
        >= 1
    )
    assert value("vetted_stripe_call_duration_seconds_count") >= 3  # the account, the PaymentIntent, the Transfer
    assert value("vetted_chat_delivery_seconds_count") >= 2
    assert value("vetted_http_request_duration_seconds_count") >= 20


def _emails(mail_dir) -> list[Any]:
    """Every email the file backend wrote: each file holds one or more, separated by a line of 79 dashes."""
    import email
    from email import policy

    found = []
    for path in sorted(mail_dir.glob("*.log")):
        for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if raw.strip():
                found.append(email.message_from_bytes(raw.lstrip(), policy=policy.default))
    return found


def _assert_the_expected_emails_were_written(story: Story, mail_dir) -> None:
    """What a client and an engineer would expect in their inbox after the story, by subject."""
    expected = {
        story.first.email: [
            "Your vetting application: approved",
            "New invitation: Async payments service",
            "You are hired on request",
            "Payouts",
            "released",
        ],
        story.second.email: ["New invitation: Async payments service", "The request was filled"],
        story.client.email: ["Your shortlist changed", "funded", "submitted", "released", "Billing active"],
    }

    def inbox() -> dict[str, list[str]]:
        by_recipient: dict[str, list[str]] = defaultdict(list)
        for message in _emails(mail_dir):
            by_recipient[str(message["To"])].append(str(message["Subject"]))
        return by_recipient

    def complete() -> bool:  # the worker sends each email as a task; give it a moment
        got = inbox()
        return all(any(part in subject for subject in got[to]) for to, parts in expected.items() for part in parts)

    wait_until(complete, timeout=30, what=f"the expected emails {expected}")
