"""SIGTERM the web server during ten in-flight funds and a live chat.

The stack is live: `manage.py serve` (the draining server), a Celery worker and the
Stripe double, on the test's PostgreSQL and Redis. Stripe is slow, so every fund is
in flight when the signal lands: half of them are at Stripe, half wait for a slot
in the bulkhead, and those answer only after the request's deadline, with their
steps still running. Meanwhile the client and the engineer chat over websockets.

After the signal a second server takes the same port (so Stripe's webhooks reach
it). Every fund without a 2xx is retried with its own Idempotency-Key, every chat
client reconnects and resyncs from the last seq it saw, and the cards are paid.
Then: each milestone is funded exactly once (one PaymentIntent at Stripe, one
escrow entry in the ledger), no fund was ever answered 500, every message either
side had acknowledged is seen by the other with no gap in seqs, and
`manage.py ledger_check` exits 0.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from django.db import connections
from django.utils import timezone

from accounts.services import api_token_create
from conversations.models import Message
from hiring_requests.models import HiringRequest
from payments import services
from payments.models import LedgerEntry, Milestone
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, EngagementFactory, PayoutAccountFactory, vetted_engineer
from tests.payments.live import DOUBLE_KEY, stripe_double
from tests.processes import ROOT, celery_worker, current_database_url, free_port, needs_redis, running, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the worker and both servers share the broker and the chat's channel layer through Redis"),
]

FUNDS = 10
STRIPE_SLOTS = 5  # STRIPE_MAX_CONCURRENCY: five funds at Stripe, five waiting for a slot
STRIPE_DELAY = 3.0  # each Stripe call: the second five finish at about twice this
DEADLINE = 4.5  # STRIPE_DEADLINE_SECONDS: the first five answer before it, the second five after it
# As in production, the grace outlasts every step in flight (30 > 25 + 1, the deadline and the bulkhead's wait):
# here the second five, which waited for a slot, end about 2 * STRIPE_DELAY after they began, well within it.
DRAIN, GRACE = 1.0, 8.0
RETRY_WITHIN = 45.0  # a fund's client keeps retrying this long
CHAT_EVERY = 0.25  # seconds between one side's messages: well under the chat's rate limit


@dataclass
class Fund:
    milestone_id: int
    key: str
    answers: list[int | str] = field(default_factory=list)  # status codes, or the transport error's name
    final: httpx.Response | None = None

    async def run(self, http: httpx.AsyncClient, token: str) -> None:
        """POST the fund, and retry it with the same key until it answers 2xx or refuses for good."""
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": self.key}
        give_up = time.monotonic() + RETRY_WITHIN
        while time.monotonic() < give_up:
            try:
                response = await http.post(f"/api/payments/milestones/{self.milestone_id}/fund", headers=headers)
            except httpx.TransportError as exc:  # the server went away mid-request, or is not back yet
                self.answers.append(type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            self.answers.append(response.status_code)
            self.final = response
            if response.status_code < 300:
                return
            if response.status_code not in (409, 429, 503) or response.json().get("code") == "milestone_state_conflict":
                return  # a refusal a client would not retry
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


@dataclass
class Talker:
    """One side of the chat: sends all the time, reconnects after any close, resyncs from its last seq."""

    name: str
    url: str
    token: str
    seen: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> message, live or through a sync
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)  # client_msg_id -> (id, seq)
    pending: dict[str, str] = field(default_factory=dict)  # client_msg_id -> body, not acknowledged yet
    closes: list[int | None] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    failed_connects: int = 0
    duplicates: int = 0
    sent: int = 0

    def highest(self) -> int:
        return max(self.seen, default=0)

    async def run(self, stop: asyncio.Event, sending: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=5
                ) as ws:
                    self.connections += 1
                    await self._session(ws, stop, sending)
                    return
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                self.failed_connects += 1  # the server is stopping or not started yet
            await asyncio.sleep(0.25)

    async def _session(self, ws: Any, stop: asyncio.Event, sending: asyncio.Event) -> None:
        synced = asyncio.Event()
        reading = asyncio.create_task(self._read(ws, synced))
        try:
            await ws.send(json.dumps({"type": "sync", "after": self.highest()}))
            await asyncio.wait_for(synced.wait(), timeout=10)
            for client_msg_id, body in list(self.pending.items()):  # resend what was never acknowledged
                await ws.send(json.dumps({"type": "send", "body": body, "client_msg_id": client_msg_id}))
            while not stop.is_set():
                if reading.done():
                    reading.result()  # the socket closed: raises ConnectionClosed
                if sending.is_set():
                    self.sent += 1
                    client_msg_id = f"{self.name}-{self.sent}"
                    self.pending[client_msg_id] = f"{self.name} says {self.sent}"
                    await ws.send(
                        json.dumps(
                            {"type": "send", "body": self.pending[client_msg_id], "client_msg_id": client_msg_id}
                        )
                    )
                await asyncio.sleep(CHAT_EVERY)
            # Stopping: one last sync, so what the other side sent last is seen too.
            synced.clear()
            await ws.send(json.dumps({"type": "sync", "after": self.highest()}))
            await asyncio.wait_for(synced.wait(), timeout=10)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await reading

    async def _read(self, ws: Any, synced: asyncio.Event) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "ack":
                self.acked[frame["client_msg_id"]] = (frame["id"], frame["seq"])
                self.pending.pop(frame["client_msg_id"], None)
                self.duplicates += int(frame["duplicate"])
            elif frame["type"] == "message":
                self.seen[frame["message"]["seq"]] = frame["message"]
            elif frame["type"] == "sync":
                for message in frame["messages"]:
                    self.seen[message["seq"]] = message
                if frame["has_more"]:
                    await ws.send(json.dumps({"type": "sync", "after": self.highest()}))
                else:
                    synced.set()
            elif frame["type"] == "error":
                self.errors.append(frame)
        raise ws.close_exc


def _status_counts() -> Counter[str]:
    """How many milestones are in each state. Off the test's thread, it hands its connection back at once."""
    try:
        return Counter(Milestone.objects.values_list("status", flat=True))
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_during_in_flight_funds_and_a_live_chat_loses_nothing_and_does_nothing_twice(rubric, tmp_path):
    client, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(client, engineer)
    # The hire, on the request the conversation belongs to: the milestones' events are told in this chat.
    HiringRequest.objects.filter(pk=conversation.request_id).update(status="hired")
    engagement = EngagementFactory.create(request=conversation.request, client=client, engineer=engineer)
    ids = [
        services.milestone_create(
            client=client,
            engagement_id=engagement.pk,
            title=f"Part {n}",
            amount_minor=20_000 + n,
            due_date=timezone.localdate() + timedelta(days=30),
        ).pk
        for n in range(FUNDS)
    ]
    client_token = api_token_create(user=client, name="funds")[1]
    engineer_token = api_token_create(user=engineer, name="chat")[1]
    port, queue, prefix = free_port(), f"term-{uuid.uuid4().hex[:8]}", f"vt-term-{uuid.uuid4().hex[:8]}"
    base = f"http://127.0.0.1:{port}"
    chat_url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation.pk}/"

    with stripe_double(log_dir=tmp_path, webhook_url=f"{base}/api/payments/stripe/webhook") as double:
        PayoutAccountFactory.create(engineer=engineer, stripe_account_id=double.onboarded_account())
        shared = {"STRIPE_API_BASE": double.base, "CELERY_QUEUE": queue, "CHANNEL_LAYER_PREFIX": prefix}
        server_env = {
            **shared,
            "DATABASE_URL": current_database_url(),
            "SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
            "SHUTDOWN_GRACE_SECONDS": str(GRACE),
            "STRIPE_DEADLINE_SECONDS": str(DEADLINE),
            "STRIPE_MAX_CONCURRENCY": str(STRIPE_SLOTS),
            "STRIPE_BULKHEAD_WAIT_SECONDS": "10",  # the second five wait for a slot rather than answer 503 busy
        }
        serve = ["manage.py", "serve", "--port", str(port)]
        with contextlib.ExitStack() as stack:
            stack.enter_context(celery_worker(queue=queue, log_dir=tmp_path, env=shared))
            first = stack.enter_context(running(serve, env=server_env, log=tmp_path / "server-1.log"))
            wait_until(lambda: _ready(base), timeout=60, what="the first server")
            double.mode("slow", STRIPE_DELAY)
            calls_before = double.api_calls()
            funds = [Fund(pk, f"fund-{pk}-{uuid.uuid4().hex}") for pk in ids]
            talkers = [Talker("client", chat_url, client_token), Talker("engineer", chat_url, engineer_token)]
            figures: dict[str, Any] = {}

            async def scenario() -> None:
                stop, sending = asyncio.Event(), asyncio.Event()
                sending.set()
                chat = [asyncio.create_task(talker.run(stop, sending)) for talker in talkers]
                await asyncio.sleep(1.5)  # the chat is under way
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    funding = [asyncio.create_task(fund.run(http, client_token)) for fund in funds]
                    # Every fund claimed, and Stripe working on as many as the bulkhead lets through.
                    await asyncio.to_thread(
                        wait_until,
                        lambda: (
                            _status_counts()["funding"] == FUNDS and double.api_calls() - calls_before >= STRIPE_SLOTS
                        ),
                        timeout=20,
                        what="every fund to be in flight",
                    )
                    figures["in_flight"] = sum(not task.done() for task in funding)
                    figures["at_stripe"] = double.api_calls() - calls_before
                    os.kill(first.pid, signal.SIGTERM)
                    signalled = time.monotonic()
                    figures["exit_code"] = await asyncio.to_thread(first.wait, 60)
                    figures["stopped_after"] = time.monotonic() - signalled
                    figures["left_claimed"] = await asyncio.to_thread(lambda: _status_counts()["funding"])
                    # A new server on the same port, as a restart would bring.
                    stack.enter_context(running(serve, env=server_env, log=tmp_path / "server-2.log"))
                    await asyncio.to_thread(wait_until, lambda: _ready(base), timeout=60, what="the second server")
                    await asyncio.gather(*funding)
                    answered = [fund.final.json() for fund in funds if fund.final and fund.final.status_code == 200]
                    assert len(answered) == FUNDS, ({fund.milestone_id: fund.answers for fund in funds}, figures)
                    # Stripe is fast again, and the client pays every milestone (Stripe.js, at "Stripe").
                    await asyncio.to_thread(double.mode, "normal")
                    for funding_out in answered:
                        confirmed = await http.post(
                            f"{double.base}/v1/payment_intents/{funding_out['payment_intent_id']}/confirm",
                            data={"payment_method": "pm_card_visa"},
                            headers=DOUBLE_KEY,
                        )
                        confirmed.raise_for_status()
                await asyncio.to_thread(
                    wait_until, lambda: _status_counts()["funded"] == FUNDS, timeout=40, what="every milestone funded"
                )
                await asyncio.sleep(1.0)  # the "funded" notes reach the chat
                sending.clear()
                await asyncio.to_thread(
                    wait_until,
                    lambda: all(not t.pending for t in talkers),
                    timeout=15,
                    what="every chat message to be acknowledged",
                )
                stop.set()
                await asyncio.wait_for(asyncio.gather(*chat), timeout=30)

            asyncio.run(scenario())
            intents = Counter(intent["metadata"]["milestone_id"] for intent in double.payment_intents())
            ledger_check = subprocess.run(
                [sys.executable, "manage.py", "ledger_check"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": current_database_url(), "STRIPE_API_BASE": double.base},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        logs = {path.name: path.read_text() for path in tmp_path.glob("*.log")}

    answers = {fund.milestone_id: fund.answers for fund in funds}
    retried = sum(len(fund.answers) > 1 for fund in funds)

    # The signal landed with every fund in flight, and the first server stopped gracefully, in its budget.
    assert figures["in_flight"] == FUNDS
    assert figures["at_stripe"] >= STRIPE_SLOTS
    assert figures["exit_code"] in (0, -signal.SIGTERM)
    assert figures["stopped_after"] < DRAIN + GRACE + 5
    assert "server.stopped" in logs["server-1.log"]
    # A graceful stop leaves no money step half-done for the sweep: each was recorded before the process ended.
    assert figures["left_claimed"] == 0, figures
    # Every fund completed, at the first try or a retry under its key; never a 500.
    assert all(500 not in fund.answers for fund in funds), answers
    assert all(fund.final is not None and fund.final.status_code == 200 for fund in funds), answers
    assert retried >= 1, answers  # some funds did outlive their request, and their retries were answered
    # Funded exactly once each: one PaymentIntent per milestone at Stripe, one escrow entry in the ledger.
    assert _status_counts() == {"funded": FUNDS}
    assert intents == {str(pk): 1 for pk in ids}
    for fund in funds:
        milestone = Milestone.objects.get(pk=fund.milestone_id)
        assert fund.final is not None
        assert fund.final.json()["payment_intent_id"] == milestone.payment_intent_id
        escrow = LedgerEntry.objects.filter(transaction__milestone=milestone, account__kind="escrow")
        assert list(escrow.values_list("amount", flat=True)) == [milestone.amount_minor]
    assert ledger_check.returncode == 0, ledger_check.stdout + ledger_check.stderr

    # The chat: both sides were told to reconnect (1012), came back, and missed nothing.
    stored = {m.seq: m.pk for m in Message.objects.filter(conversation=conversation)}
    assert sorted(stored) == list(range(1, len(stored) + 1))
    for talker in talkers:
        assert 1012 in talker.closes, (talker.name, talker.closes)
        assert talker.connections >= 2
        assert talker.errors == []
        assert not talker.pending
        # No gap: every seq from the first, each with the id the database gave it.
        assert {seq: m["id"] for seq, m in talker.seen.items()} == stored, talker.name
    for sender, reader in ((talkers[0], talkers[1]), (talkers[1], talkers[0])):
        for client_msg_id, (message_id, seq) in sender.acked.items():
            assert reader.seen[seq]["id"] == message_id
            assert reader.seen[seq]["client_msg_id"] == client_msg_id
    # Each message was stored once, whether or not it had to be resent after the restart.
    texts = Message.objects.filter(conversation=conversation, kind="text")
    assert texts.count() == sum(talker.sent for talker in talkers)
    assert set(
        Message.objects.filter(conversation=conversation, kind="system").values_list("payload__event", flat=True)
    ) >= {"milestone.funded"}
    for name, text in logs.items():
        assert "Traceback" not in text, name
