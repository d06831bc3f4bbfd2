"""Liveness and readiness.

`/health/live` answers while the process runs. `/health/ready` asks every
dependency at once, each under the same timeout, and answers 503 naming the
parts that failed, so a load balancer stops sending traffic and an operator
knows where to look.

What is not our process's health is reported under `info` and never fails
readiness: Stripe's breaker (Stripe being down is not a reason to pull a healthy
instance), how busy the connection pool is (a saturated pool sheds load with 503s
on its own; pulling the instance would move its load onto the others), and
money waiting on Stripe (stuck webhook events, payment steps in flight).
The database check opens its own connection, outside the pool, so "the database
is down" and "the pool is saturated" are told apart.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from marketplace.celery import app as celery_app
from marketplace.shutdown import is_draining

logger = logging.getLogger(__name__)


def _database() -> None:
    connection = connections["default"]
    if connection.vendor != "postgresql":
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            # This runs on a throwaway thread: give its connection back now.
            connection.close()
        return
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params["connect_timeout"] = max(1, int(settings.HEALTH_CHECK_TIMEOUT))
    with psycopg.connect(**params, autocommit=True) as direct:
        direct.execute("SELECT 1")


def _pool() -> dict[str, object]:
    pool = getattr(connections["default"], "pool", None)
    if pool is None:
        return {"pooled": False}
    stats = pool.get_stats()
    available, waiting = stats.get("pool_available", 0), stats.get("requests_waiting", 0)
    return {
        "size": stats.get("pool_size", 0),
        "max": pool.max_size,
        "available": available,
        "waiting": waiting,
        "saturated": available == 0 and waiting > 0,
    }


def _money_waiting() -> dict[str, object]:
    from payments.models import STEP_STATES, Milestone
    from payments.services.webhooks import stripe_events_stuck

    try:
        stale_before = timezone.now() - timedelta(seconds=settings.PAYMENT_STEP_STALE_SECONDS)
        return {
            "stripe_events_stuck": stripe_events_stuck().count(),
            "payment_steps_stale": Milestone.objects.filter(
                status__in=STEP_STATES, step_claimed_at__lt=stale_before
            ).count(),
        }
    finally:
        connections["default"].close()


async def _info() -> dict[str, object]:
    from payments import gateway

    info: dict[str, object] = {"stripe": {"breaker": gateway.breaker.state, "failures": gateway.breaker.failures}}
    info["database_pool"] = _pool()
    try:
        async with asyncio.timeout(settings.HEALTH_CHECK_TIMEOUT):
            info |= await sync_to_async(_money_waiting, thread_sensitive=False)()
    except Exception as exc:  # reported, never fatal: this is information
        info["money_waiting"] = f"unknown: {type(exc).__name__}"
    return info


def _cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("health.")
    await layer.send(channel, {"type": "health.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "health.ping":
        raise RuntimeError("channel layer returned a different message")


def _broker() -> None:
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT)


def _in_thread(check: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    # thread_sensitive=False: a hung dependency must not hold the one thread
    # that every other sync view shares.
    return sync_to_async(check, thread_sensitive=False)


CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "database": _in_thread(_database),
    "cache": _in_thread(_cache),
    "channel_layer": _channel_layer,
    "broker": _in_thread(_broker),
}


async def _run(name: str, check: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(check(), timeout=settings.HEALTH_CHECK_TIMEOUT)
    except TimeoutError:
        logger.warning("health.timeout", extra={"check": name})
        return "timeout"
    except Exception as exc:
        logger.warning("health.failed", extra={"check": name, "error": repr(exc)})
        return f"error: {type(exc).__name__}"
    return "ok"


@require_safe  # GET, and HEAD for load balancers that probe with it
async def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_safe  # GET, and HEAD for load balancers that probe with it
async def ready(request: HttpRequest) -> JsonResponse:
    if is_draining():
        # Shutting down: out of rotation first, while requests in hand finish (marketplace.shutdown).
        return JsonResponse({"status": "draining", "code": "draining"}, status=503)
    names = list(CHECKS)
    results = await asyncio.gather(*(_run(name, CHECKS[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    info = await _info()
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        body = {"status": "unavailable", "code": "not_ready", "failed": failed, "checks": checks, "info": info}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": checks, "info": info})
