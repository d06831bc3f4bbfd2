"""The webhook endpoint: verify the signature on the raw body, store once, answer fast."""

import json
import time

import pytest

from payments.models import StripeEvent
from payments.services import webhooks
from stripe_double.app import sign
from tests.payments.conftest import SECRET

pytestmark = pytest.mark.django_db

URL = "/api/payments/stripe/webhook"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def event_body(event_id: str = "evt_1") -> str:
    return json.dumps(
        {"id": event_id, "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    )


def send(client, body: str, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, body, content_type="application/json", **headers)


def test_a_signed_event_is_stored_once(client):
    body = event_body()

    first = send(client, body, sign(body, SECRET))
    again = send(client, body, sign(body, SECRET))

    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert again.json()["duplicate"] is True
    assert StripeEvent.objects.get().stripe_id == "evt_1"


def test_a_duplicate_is_answered_from_one_statement_and_processed_once(
    client, django_assert_num_queries, django_capture_on_commit_callbacks, monkeypatch
):
    from payments import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.process_stripe_event, "delay_on_commit", queued.append)
    body = event_body("evt_again")
    with django_capture_on_commit_callbacks(execute=True):
        send(client, body, sign(body, SECRET))
    stored_id = StripeEvent.objects.get(stripe_id="evt_again").pk
    webhooks.stored_event_ids.clear()  # as another process would: it has not seen the id

    # The insert that finds the id stored, and nothing else.
    with django_assert_num_queries(1), django_capture_on_commit_callbacks(execute=True):
        again = send(client, body, sign(body, SECRET))

    assert again.json() == {"received": True, "duplicate": True}
    assert queued == [stored_id]  # processed once, for the first delivery
    assert StripeEvent.objects.filter(stripe_id="evt_again").count() == 1


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "tampered body", "missing header", "stale timestamp", "garbage header", "future timestamp"],
)
def test_bad_signatures_get_400_and_store_nothing(client, case):
    body = event_body()
    signature = {
        "wrong secret": sign(body, "whsec_someone_else"),
        "tampered body": sign(body.replace("cus_1", "cus_2"), SECRET),
        "missing header": None,
        "stale timestamp": sign(body, SECRET, timestamp=int(time.time()) - 301),
        "garbage header": "t=abc,v1=zzz",
        "future timestamp": sign(body, SECRET, timestamp=int(time.time()) + 3_600),
    }[case]

    response = send(client, body, signature)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2, 3]",
        "null",
        '"evt_1"',
        "{}",
        json.dumps({"id": None, "type": "x", "data": {"object": {}}}),
        json.dumps({"id": "evt_1", "type": None, "data": {"object": {}}}),
        json.dumps({"id": "evt_" + "x" * 200, "type": "x", "data": {"object": {}}}),
        json.dumps({"id": "evt_1", "type": "x" * 200, "data": {"object": {}}}),
        json.dumps({"id": "evt_\u0000", "type": "x", "data": {"object": {}}}),
        json.dumps({"id": "evt_1", "type": "x", "data": {"object": {"name": "a\u0000b"}}}),
        json.dumps({"id": "evt_1", "type": "x", "data": []}),
        json.dumps({"id": "evt_1", "type": "x", "data": {"object": "cus_1"}}),
        "{not json",
    ],
)
def test_a_signed_body_that_is_not_a_stripe_event_gets_400_and_stores_nothing(client, body):
    response = send(client, body, sign(body, SECRET))

    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_event", "invalid_signature"}
    assert not StripeEvent.objects.exists()


def test_a_timestamp_slightly_ahead_of_our_clock_is_accepted(client):
    body = event_body()

    response = send(client, body, sign(body, SECRET, timestamp=int(time.time()) + 60))

    assert response.status_code == 200


def test_a_timestamp_inside_the_tolerance_is_accepted(client):
    body = event_body()

    response = send(client, body, sign(body, SECRET, timestamp=int(time.time()) - 290))

    assert response.status_code == 200


def test_the_written_out_insert_stores_what_the_orm_would_store():
    event = json.loads(event_body("evt_written_out"))
    event["data"]["object"]["note"] = "naïve ✓ \\u00e9"

    stored_id = webhooks._insert_unless_stored(event)
    again = webhooks._insert_unless_stored(event)
    by_orm = StripeEvent.objects.create(stripe_id="evt_by_orm", type=event["type"], payload=event)

    assert again is None
    assert stored_id is not None
    stored = StripeEvent.objects.get(pk=stored_id)
    by_orm.refresh_from_db()
    assert (stored.stripe_id, stored.type, stored.payload) == ("evt_written_out", "customer.created", event)
    assert (stored.attempts, stored.last_error, stored.processed_at, stored.next_attempt_at, stored.alerted_at) == (
        by_orm.attempts,
        by_orm.last_error,
        by_orm.processed_at,
        by_orm.next_attempt_at,
        by_orm.alerted_at,
    )
    assert abs((stored.received_at - by_orm.received_at).total_seconds()) < 60
