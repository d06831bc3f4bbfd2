"""Each process remembers the event ids it knows are stored, and answers their duplicates without a query.

The rules (payments.services.webhooks.StoredEventIds): an id is learnt once the statement that
stored it, or found it stored, has committed, never before; a rolled-back insert is not taken for
stored; the memory is bounded, least recently used out first. Run on committed rows
(`transactional_db`): inside a test's transaction nothing ever commits.
"""

import pytest
from django.db import transaction

from payments.models import StripeEvent
from payments.services import webhooks
from payments.services.webhooks import StoredEventIds, stored_event_ids
from stripe_double.app import sign
from tests.payments.conftest import SECRET
from tests.payments.test_webhooks import event_body, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def test_a_duplicate_of_an_event_this_process_stored_costs_no_query(client, django_assert_num_queries):
    body = event_body("evt_stored_here")
    assert send(client, body, sign(body, SECRET)).json() == {"received": True, "duplicate": False}

    with django_assert_num_queries(0):
        again = send(client, body, sign(body, SECRET))

    assert again.json() == {"received": True, "duplicate": True}
    assert StripeEvent.objects.filter(stripe_id="evt_stored_here").count() == 1


def test_an_event_another_process_stored_costs_one_statement_then_none(client, django_assert_num_queries):
    body = event_body("evt_stored_elsewhere")
    StripeEvent.objects.create(stripe_id="evt_stored_elsewhere", type="customer.created", payload={})

    with django_assert_num_queries(1):
        first = send(client, body, sign(body, SECRET))
    with django_assert_num_queries(0):
        second = send(client, body, sign(body, SECRET))

    assert first.json()["duplicate"] is True
    assert second.json()["duplicate"] is True


def test_an_insert_that_rolled_back_is_not_remembered(client):
    body = event_body("evt_rolled_back")

    created = []

    def receive_then_fail() -> None:
        with transaction.atomic():
            created.append(webhooks.stripe_event_receive(payload=body.encode(), signature=sign(body, SECRET)))
            raise RuntimeError("the caller's transaction fails after the insert")

    with pytest.raises(RuntimeError):
        receive_then_fail()

    assert created == [True]

    assert not stored_event_ids.known("evt_rolled_back")
    assert not StripeEvent.objects.filter(stripe_id="evt_rolled_back").exists()
    # Stripe's retry is stored, not answered as a duplicate of something that is not there.
    assert send(client, body, sign(body, SECRET)).json() == {"received": True, "duplicate": False}
    assert StripeEvent.objects.filter(stripe_id="evt_rolled_back").count() == 1


def test_a_duplicate_found_inside_a_transaction_is_remembered_once_it_commits():
    body = event_body("evt_found_in_a_transaction")
    StripeEvent.objects.create(stripe_id="evt_found_in_a_transaction", type="customer.created", payload={})

    with transaction.atomic():
        assert webhooks.stripe_event_receive(payload=body.encode(), signature=sign(body, SECRET)) is False
        assert not stored_event_ids.known("evt_found_in_a_transaction")

    assert stored_event_ids.known("evt_found_in_a_transaction")


def test_the_memory_is_bounded_and_forgets_the_least_recently_used():
    remembered = StoredEventIds(maxsize=2)
    remembered.remember("evt_a")
    remembered.remember("evt_b")
    assert remembered.known("evt_a")  # a use: evt_b is now the least recently used
    remembered.remember("evt_c")

    assert [remembered.known(i) for i in ("evt_a", "evt_b", "evt_c")] == [True, False, True]
    remembered.clear()
    assert not remembered.known("evt_a")


def test_the_process_memory_has_the_configured_size(settings):
    assert stored_event_ids._ids.maxsize == settings.WEBHOOK_STORED_IDS_REMEMBERED


def test_the_same_new_event_delivered_at_once_is_stored_and_queued_once(monkeypatch):
    from payments import tasks
    from tests.concurrency import race

    queued: list[int] = []
    monkeypatch.setattr(tasks.process_stripe_event, "delay_on_commit", queued.append)
    body = event_body("evt_at_once")

    def deliver() -> bool:
        return webhooks.stripe_event_receive(payload=body.encode(), signature=sign(body, SECRET))

    outcomes = race(*[deliver] * 4)

    assert sorted(outcomes, key=bool) == [False, False, False, True]
    stored = StripeEvent.objects.get(stripe_id="evt_at_once")
    assert queued == [stored.pk]
