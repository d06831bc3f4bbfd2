"""Prometheus metrics at `/metrics`: the service's health and its promises, as numbers.

Counters and histograms are kept by prometheus_client. With several processes (uvicorn
workers, Celery workers) set `PROMETHEUS_MULTIPROC_DIR` to a directory they share, empty at
start: each process writes its own files there and a scrape sums them (prometheus_client's
multiprocess mode, https://prometheus.github.io/client_python/multiprocess/).

What the database knows (requests at risk of the 8-hour deadline, milestones awaiting
release, escrow held) is read at scrape time by `BusinessCollector`, so it is the same
whichever process answers. `/metrics` answers only addresses in `METRICS_ALLOWED_NETWORKS`
(default: this host) or a caller sending `Authorization: Bearer <METRICS_TOKEN>`.
docs/operations.md ("Metrics") lists every family and the alert rules in docs/ops/.
"""

import asyncio
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from kombu.exceptions import ChannelError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from marketplace.proxies import client_address
from marketplace.tracing import route_of

logger = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

http_request_duration = Histogram(
    "vetted_http_request_duration_seconds",
    "HTTP request duration, by route pattern, method and status.",
    ["route", "method", "status"],
    buckets=_SECONDS,
)
stripe_call_duration = Histogram(
    "vetted_stripe_call_duration_seconds",
    "Stripe calls, by operation and outcome (ok, refused, unavailable, deadline, breaker_open, busy).",
    ["operation", "outcome"],
    buckets=_SECONDS,
)
stripe_breaker_open = Gauge(
    "vetted_stripe_breaker_open", "1 while this process's Stripe breaker refuses calls.", multiprocess_mode="max"
)
task_duration = Histogram(
    "vetted_celery_task_duration_seconds", "Celery task run time, by task and outcome.", ["task", "outcome"]
)
task_publish_failures = Counter(
    "vetted_celery_publish_failures",
    "Tasks the broker could not take when their transaction committed, by task (a sweep re-drives them).",
    ["task"],
)
websockets_open = Gauge("vetted_websockets_open", "Websockets open, by kind.", ["kind"], multiprocess_mode="livesum")
chat_delivery = Histogram(
    "vetted_chat_delivery_seconds",
    "From a chat message's commit to its frame being sent to a member's socket.",
    buckets=_SECONDS,
)
event_loop_lag = Gauge(
    "vetted_event_loop_lag_seconds",
    "How late the event loop ran a timer it was asked to run (the loop monitor's last sample).",
    multiprocess_mode="max",
)
raise_to_first_invitation = Histogram(
    "vetted_raise_to_first_invitation_seconds",
    "From a request's raise to its first invitation (the 8-hour promise's first step).",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 8 * 3600),
)
deadline_breaches = Counter("vetted_deadline_breaches", "Requests that missed the 8-hour promise.")


_task_started: dict[str, float] = {}


@task_prerun.connect(dispatch_uid="metrics.task_prerun")
def _task_started_now(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id is not None:
        _task_started.setdefault(task_id, time.monotonic())


@task_postrun.connect(dispatch_uid="metrics.task_postrun")
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    started = _task_started.pop(task_id or "", None)
    if started is not None and task is not None:
        outcome = (state or "unknown").lower()
        task_duration.labels(task=task.name, outcome=outcome).observe(time.monotonic() - started)


def observe_route(request: HttpRequest, status: int, seconds: float) -> None:
    http_request_duration.labels(route=route_of(request), method=request.method or "", status=str(status)).observe(
        seconds
    )


class RequestMetricsMiddleware:
    """Times every request by its route pattern (`/api/requests/<int:request_id>`, never the raw path)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = time.monotonic()
        response: HttpResponseBase = self.get_response(request)
        observe_route(request, response.status_code, time.monotonic() - started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        response = await get_response(request)
        observe_route(request, response.status_code, time.monotonic() - started)
        return response


class BusinessCollector(Collector):
    """Read at scrape time from the database and the broker: the same answer from every process."""

    NAMES = (
        "vetted_requests_at_risk",
        "vetted_milestones_awaiting_release",
        "vetted_escrow_held_minor",
        "vetted_db_pool_in_use",
        "vetted_db_pool_waiting",
        "vetted_db_pool_timeouts",
        "vetted_celery_queue_depth",
    )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only, so registering reads nothing (prometheus_client calls this at register time).
        for name in self.NAMES:
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import connections

        try:
            yield from self._promises()
            yield from self._pool()
            yield from self._queue()
        finally:
            connections.close_all()

    def _promises(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Sum

        from hiring_requests.selectors import requests_at_risk
        from payments.models import LedgerAccount, LedgerAccountKind, Milestone, MilestoneStatus

        at_risk = GaugeMetricFamily(
            "vetted_requests_at_risk", "Open requests within the at-risk window of their 8-hour deadline."
        )
        at_risk.add_metric([], requests_at_risk().count())
        yield at_risk
        awaiting = GaugeMetricFamily(
            "vetted_milestones_awaiting_release", "Milestones submitted and waiting for the client's review."
        )
        awaiting.add_metric([], Milestone.objects.filter(status=MilestoneStatus.SUBMITTED).count())
        yield awaiting
        held = GaugeMetricFamily(
            "vetted_escrow_held_minor", "Money the ledger's escrow accounts hold, minor units.", labels=["currency"]
        )
        rows = (
            LedgerAccount.objects.filter(kind=LedgerAccountKind.ESCROW)
            .values("currency")
            .annotate(total=Sum("balance"))
            .order_by("currency")
        )
        for row in rows:
            held.add_metric([row["currency"]], row["total"] or 0)
        yield held

    def _pool(self) -> Iterator[GaugeMetricFamily]:
        from django.db import connections

        pool = getattr(connections["default"], "pool", None)
        if pool is None:
            return
        stats = pool.get_stats()
        for name, key, text in (
            ("vetted_db_pool_in_use", None, "Database connections handed out by this process's pool."),
            ("vetted_db_pool_waiting", "requests_waiting", "Requests waiting for a connection."),
            ("vetted_db_pool_timeouts", "requests_errors", "Requests for a connection that timed out or failed."),
        ):
            family = GaugeMetricFamily(name, text)
            if key is None:
                family.add_metric([], stats.get("pool_size", 0) - stats.get("pool_available", 0))
            else:
                family.add_metric([], stats.get(key, 0))
            yield family

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        from marketplace.celery import app

        depth = GaugeMetricFamily("vetted_celery_queue_depth", "Tasks waiting in the broker queue.", labels=["queue"])
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        try:
            with app.connection_for_read() as connection:
                try:
                    declared = connection.default_channel.queue_declare(queue=queue, passive=True)
                    depth.add_metric([queue], declared.message_count)
                except ChannelError as exc:
                    if "NOT_FOUND" not in str(exc):
                        raise
                    # Redis deletes a list when its last item is taken: an empty queue is "not found" there.
                    depth.add_metric([queue], 0)
        except Exception as exc:
            logger.warning("metrics.queue_depth_unknown", extra={"error": repr(exc)})
            return
        yield depth


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_business)
        return registry
    return REGISTRY


_business = BusinessCollector()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_business)


def allowed(request: HttpRequest) -> bool:
    """Whether `request` may read /metrics: from an allowed network, or with the metrics token."""
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in settings.METRICS_ALLOWED_NETWORKS)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse(status=404)  # as if there were nothing here
    body = await sync_to_async(generate_latest, thread_sensitive=False)(_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


async def monitor_event_loop(*, interval: float = 0.5) -> None:
    """Sample how late the loop wakes from a sleep of `interval` seconds; the lateness is the lag.

    Runs for the process's life (started by marketplace.lifespan); blocking work on the loop shows
    up here as seconds, where a request's own timing would hide it among its awaits.
    """
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        event_loop_lag.set(max(0.0, loop.time() - expected))
