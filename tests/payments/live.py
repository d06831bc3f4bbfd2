"""Live processes for the money path's fault tests: the Stripe double and the server, on the test database."""

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from accounts.models import User
from accounts.services import api_token_create
from hiring_requests.models import Engagement
from tests.factories import ClientFactory, EngagementFactory, MilestoneFactory, PayoutAccountFactory, vetted_engineer
from tests.processes import free_port, running, wait_until

DOUBLE_KEY = {"Authorization": "Bearer sk_test_double"}


@dataclass
class Double:
    base: str

    def mode(self, mode: str, delay_seconds: float = 0) -> None:
        httpx.post(
            f"{self.base}/_test/mode", data={"mode": mode, "delay_seconds": str(delay_seconds)}, timeout=5
        ).raise_for_status()

    def api_calls(self) -> int:
        return int(httpx.get(f"{self.base}/_test/requests", timeout=5).json()["count"])

    def payment_intents(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base}/v1/payment_intents", params={"limit": 100}, headers=DOUBLE_KEY, timeout=30)
        return list(answer.json()["data"])

    def transfers(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base}/v1/transfers", params={"limit": 100}, headers=DOUBLE_KEY, timeout=30)
        return list(answer.json()["data"])

    def onboarded_account(self) -> str:
        made = httpx.post(f"{self.base}/v1/accounts", data={"type": "express"}, headers=DOUBLE_KEY, timeout=5).json()
        httpx.post(f"{self.base}/_test/accounts/{made['id']}/complete_onboarding", timeout=5).raise_for_status()
        return str(made["id"])


@contextmanager
def stripe_double(*, log_dir: Path, webhook_url: str | None = None) -> Iterator[Double]:
    port = free_port()
    args = ["manage.py", "stripe_double", "--port", str(port)]
    if webhook_url:
        args += ["--webhook-url", webhook_url]
    with running(args, env={}, log=log_dir / "stripe-double.log"):
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{base}/v1/events", headers=DOUBLE_KEY, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout=30, what="the Stripe double to start")
        yield Double(base)


@dataclass
class Party:
    engagement: Engagement
    client: User
    engineer: User
    client_token: str


def party(*, double: Double | None = None, milestones: int = 0, status: str = "draft") -> tuple[Party, list[int]]:
    """A client and a vetted engineer with an active engagement and `milestones` milestones in `status`."""
    client, engineer = ClientFactory.create(), vetted_engineer()
    engagement = EngagementFactory.create(client=client, engineer=engineer)
    if double is not None:
        PayoutAccountFactory.create(engineer=engineer, stripe_account_id=double.onboarded_account())
    ids = [
        MilestoneFactory.create(engagement=engagement, title=f"Part {n}", amount_minor=20_000, status=status).pk
        for n in range(milestones)
    ]
    token = api_token_create(user=client, name="live")[1]
    return Party(engagement, client, engineer, token), ids


def kill_group(pid: int) -> None:
    """SIGKILL a process and everything it started: a crash, not a shutdown."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
