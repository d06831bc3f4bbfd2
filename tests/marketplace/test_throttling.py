"""Rate limits: RateLimit-* fields on every counted response, Retry-After as the time left, exact counts under races."""

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.models import ApiToken, User
from conversations.models import Message
from marketplace.throttling import Quota, tightest, window_of
from tests.concurrency import race
from tests.conversations.conftest import conversation_between
from tests.factories import PASSWORD, ClientFactory, vetted_engineer

pytestmark = pytest.mark.django_db


def register(client: Client, body: dict[str, str] | None = None):
    # An empty body is refused (422) after the limit has counted it: nothing is created.
    return client.post("/api/auth/register", json.dumps(body or {}), content_type="application/json")


def fields(response) -> tuple[str, str, int]:
    return response["RateLimit-Limit"], response["RateLimit-Remaining"], int(response["RateLimit-Reset"])


def test_every_response_of_a_limited_operation_counts_down(client, settings):
    settings.RATE_LIMIT_REGISTER = "3/60"

    answers = [register(client) for _ in range(4)]

    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert [fields(a)[:2] for a in answers] == [("3", "2"), ("3", "1"), ("3", "0"), ("3", "0")]
    assert all(1 <= fields(a)[2] <= 60 for a in answers)
    assert answers[3].json()["code"] == "rate_limited"
    assert answers[3]["Retry-After"] == answers[3]["RateLimit-Reset"]


def test_a_successful_answer_carries_the_fields_too(client, settings):
    settings.RATE_LIMIT_REGISTER = "5/3600"

    response = register(client, {"email": "new@example.test", "password": PASSWORD, "role": "client"})

    assert response.status_code == 201
    assert fields(response)[:2] == ("5", "4")


def test_operations_without_a_limit_have_no_fields(client):
    response = client.get("/api/auth/csrf")

    assert "RateLimit-Limit" not in response


def test_retry_after_is_what_is_left_of_the_window_and_the_next_window_starts_afresh(client, settings):
    settings.RATE_LIMIT_REGISTER = "1/60"
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC), tick=False) as clock:
        first = register(client)
        left = int(first["RateLimit-Reset"])
        clock.shift(left - 1)
        refused = register(client)
        clock.shift(1)
        next_window = register(client)

    assert 1 <= left <= 60
    assert (refused.status_code, refused["Retry-After"], refused["RateLimit-Reset"]) == (429, "1", "1")
    assert next_window.status_code == 422
    assert fields(next_window) == ("1", "0", 60)


def test_a_window_ends_offset_seconds_into_the_clock_and_lasts_its_length():
    number, left = window_of("ratelimit:x", 60, 1_000_000.0)
    same, later = window_of("ratelimit:x", 60, 1_000_000.0 + left - 0.5)
    following, full = window_of("ratelimit:x", 60, 1_000_000.0 + left)

    assert 0 < left <= 60
    assert (same, later) == (number, 0.5)
    assert (following, full) == (number + 1, 60)


def test_two_limits_report_the_tighter_one():
    loose, tight, longer = Quota(10, 5, 30), Quota(3, 0, 20), Quota(3, 0, 50)

    assert tightest([loose, tight]) == tight
    assert tightest([loose, tight, longer]) == longer


def test_parallel_attempts_are_counted_exactly(settings):
    settings.RATE_LIMIT_REGISTER = "5/3600"

    answers = race(*[lambda: register(Client()) for _ in range(12)])

    statuses = sorted(a.status_code for a in answers)  # type: ignore[attr-defined]
    assert statuses == [422] * 5 + [429] * 7
    remaining = sorted(a["RateLimit-Remaining"] for a in answers if a.status_code == 422)  # type: ignore[index,attr-defined]
    assert remaining == ["0", "1", "2", "3", "4"]


def cache_down(monkeypatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(cache, "add", unreachable)
    monkeypatch.setattr(cache, "incr", unreachable)


def test_a_limit_that_protects_accounts_refuses_with_503_when_the_cache_is_down(client, monkeypatch):
    user = ClientFactory.create()
    cache_down(monkeypatch)

    response = client.post(
        "/api/auth/tokens",
        json.dumps({"email": user.email, "password": PASSWORD, "name": "ci"}),
        content_type="application/json",
    )

    assert response.status_code == 503
    assert response.json()["code"] == "rate_limit_unavailable"
    assert response["Retry-After"] == "5"
    assert "RateLimit-Limit" not in response
    assert not ApiToken.objects.filter(user=user).exists()
    assert User.objects.count() == 1


def test_a_limit_that_paces_chat_lets_messages_through_when_the_cache_is_down(client, monkeypatch, rubric):
    owner, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(owner, engineer)
    client.force_login(owner)
    cache_down(monkeypatch)

    response = client.post(
        f"/api/conversations/{conversation.pk}/messages",
        json.dumps({"body": "still here"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.get("/api/auth/csrf").json()["csrf_token"],
    )

    assert response.status_code == 201
    assert "RateLimit-Limit" not in response
    assert Message.objects.filter(conversation=conversation, body="still here").count() == 1


def test_a_429_waits_for_every_exhausted_limit_not_only_the_one_that_refused():
    """Login counts an address and an email: at its count, the address limit still refuses the retry."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from marketplace.throttling import _QUOTAS, Quota, RateLimitHeadersMiddleware

    request = RequestFactory().post("/api/auth/tokens")
    setattr(request, _QUOTAS, [Quota(limit=10, remaining=0, reset=49), Quota(limit=5, remaining=0, reset=9)])
    refused = RateLimitHeadersMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse(status=429))

    assert refused["Retry-After"] == "49"
    assert refused["RateLimit-Reset"] == "49"
