"""Async code tested as async: a caller that goes away mid-step, and a deadline that fires mid-step."""

import asyncio
import time
from datetime import timedelta
from types import SimpleNamespace
from unittest.mock import AsyncMock

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.utils import timezone

from accounts.models import User
from payments import gateway, services
from payments.errors import PaymentsUnavailable
from payments.models import Milestone
from tests.payments.live import party
from tests.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


def _draft() -> tuple[User, int]:
    who, (pk,) = party(milestones=1)
    return who.client, pk


def _left_funding(pk: int) -> None:
    try:
        wait_until(lambda: Milestone.objects.get(pk=pk).status != "funding", timeout=10, what="the record phase")
    finally:
        connections.close_all()


async def test_a_client_that_disconnects_mid_fund_leaves_no_half_state(rubric, monkeypatch):
    client, pk = await sync_to_async(_draft)()
    asked, hang_up = asyncio.Event(), asyncio.Event()

    async def slow_stripe(**params):
        asked.set()
        await hang_up.wait()  # Stripe answers only after the client has gone
        return SimpleNamespace(id="pi_from_mock", client_secret="pi_from_mock_secret")

    stripe_call = AsyncMock(side_effect=slow_stripe)
    monkeypatch.setattr(gateway, "create_payment_intent", stripe_call)

    request = asyncio.create_task(services.amilestone_fund(client=client, milestone_id=pk))
    await asyncio.wait_for(asked.wait(), timeout=5)  # claimed, waiting on Stripe: the client goes away
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    hang_up.set()
    # The shielded record phase commits on its own (it needs asgiref's shared sync thread: wait elsewhere).
    await sync_to_async(_left_funding, thread_sensitive=False)(pk)
    stored = await Milestone.objects.aget(pk=pk)

    assert stripe_call.await_count == 1
    assert stripe_call.await_args is not None
    assert stripe_call.await_args.kwargs["key"] == f"milestone-{pk}-fund-0"
    assert (stored.status, stored.payment_intent_id) == ("awaiting_funding", "pi_from_mock")


async def test_the_deadline_fires_and_the_step_stays_recoverable(rubric, monkeypatch, settings):
    settings.STRIPE_DEADLINE_SECONDS = 0.3
    client, pk = await sync_to_async(_draft)()

    async def hangs(*args, **kwargs):
        await asyncio.sleep(30)

    never_answers = SimpleNamespace(v1=SimpleNamespace(payment_intents=SimpleNamespace(create_async=hangs)))
    monkeypatch.setattr(gateway, "_client", lambda: never_answers)

    started = time.monotonic()
    with pytest.raises(PaymentsUnavailable) as unavailable:
        await services.amilestone_fund(client=client, milestone_id=pk)
    waited = time.monotonic() - started
    left = await Milestone.objects.aget(pk=pk)

    monkeypatch.setattr(
        gateway,
        "create_payment_intent",
        AsyncMock(return_value=SimpleNamespace(id="pi_replayed", client_secret="pi_replayed_secret")),
    )
    later = timezone.now() + timedelta(seconds=django_settings.PAYMENT_STEP_STALE_SECONDS + 1)
    resumed = await services.asteps_resume(now=later)
    finished = await Milestone.objects.aget(pk=pk)

    assert waited < 5
    assert unavailable.value.sent is True  # Stripe may have acted: the claim is kept, not given back
    assert left.status == "funding"
    assert resumed == {"resumed": 1, "failed": 0}
    assert (finished.status, finished.payment_intent_id) == ("awaiting_funding", "pi_replayed")
