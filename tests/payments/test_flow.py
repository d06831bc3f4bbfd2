"""The money flow through the API, against the Stripe double, with the ledger checked after each story."""

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from payments import services
from payments.errors import MilestoneStateConflict, TooManyChangeRounds
from payments.models import LedgerAccount, LedgerTransaction, Milestone, StripeEvent
from payments.selectors import ledger_problems
from tests.api_calls import post_json
from tests.factories import StaffFactory
from tests.payments.conftest import deliver_webhooks
from tests.payments.helpers import engagement, funded, milestone, pay_at_stripe

pytestmark = pytest.mark.django_db


def test_fund_submit_approve_release_through_the_api(client, rubric, stripe_settings):
    made = engagement()
    client.force_login(made.client)
    due = str(timezone.localdate() + timedelta(days=9))
    created = post_json(
        client,
        f"/api/payments/engagements/{made.pk}/milestones",
        {"title": "Worker pool", "amount_minor": 50_000, "due_date": due},
    )
    milestone_id = created.json()["id"]

    funding = post_json(client, f"/api/payments/milestones/{milestone_id}/fund")
    pay_at_stripe(stripe_settings, Milestone.objects.get(pk=milestone_id))
    deliver_webhooks(stripe_settings, client)
    funded_now = client.get(f"/api/payments/milestones/{milestone_id}").json()
    client.force_login(made.engineer)
    post_json(client, f"/api/payments/milestones/{milestone_id}/submit", {"note": "done"})
    client.force_login(made.client)
    released = post_json(client, f"/api/payments/milestones/{milestone_id}/approve")

    assert created.status_code == 201
    assert funding.json()["client_secret"].startswith(funding.json()["payment_intent_id"])
    assert funded_now["status"] == "funded"
    assert released.json()["status"] == "released"
    transfer = stripe_settings.double.objects["transfers"][released.json()["transfer_id"]]
    charge_id = Milestone.objects.get(pk=milestone_id).charge_id
    assert (transfer["amount"], transfer["source_transaction"]) == (45_000, charge_id)  # less the 10% fee
    # Paid: both sides may now review each other.
    assert list(made.review_rounds.values_list("step", flat=True)) == [f"milestone-{milestone_id}"]
    assert ledger_problems() == []
    call_command("ledger_check")


def test_a_release_books_the_share_on_the_engineers_own_payout_account_and_the_fee_on_the_platforms(
    client, rubric, stripe_settings, settings
):
    settings.PLATFORM_FEE_BP = 1000
    made = engagement()
    work = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)

    services.milestone_approve(client=made.client, milestone_id=work.pk)

    balances = dict(
        LedgerAccount.objects.filter(kind__in=["engineer_payout", "platform_fee"]).values_list("code", "balance")
    )
    assert balances == {f"engineer_payout:engineer-{made.engineer_id}:usd": 45_000, "platform_fee:platform:usd": 5_000}


def test_refund_of_a_funded_milestone(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)

    refunded = services.milestone_refund(client=made.client, milestone_id=paid.pk)

    assert refunded.status == "refunded"
    assert stripe_settings.double.objects["charges"][paid.charge_id]["amount_refunded"] == 50_000
    assert ledger_problems() == []


def test_a_submitted_milestone_is_not_refunded(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
    client.force_login(made.client)

    response = post_json(client, f"/api/payments/milestones/{paid.pk}/refund")

    assert response.status_code == 409
    assert response.json()["code"] == "milestone_state_conflict"
    assert stripe_settings.double.objects["refunds"] == {}


def test_changes_are_limited_to_three_rounds_and_pause_the_review_clock(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    for _ in range(3):
        services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
        paused = services.milestone_request_changes(client=made.client, milestone_id=paid.pk, note="tests please")
        assert paused.review_deadline is None
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)

    with pytest.raises(TooManyChangeRounds):
        services.milestone_request_changes(client=made.client, milestone_id=paid.pk, note="again")

    assert Milestone.objects.get(pk=paid.pk).status == "submitted"


def test_the_sweep_approves_after_the_review_window(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
        traveller.shift(timedelta(days=6, hours=23))
        assert services.payments_sweep() == {"resumed": 0, "failed": 0, "auto_approved": 0, "released": 0}
        traveller.shift(timedelta(hours=2))
        assert services.payments_sweep() == {"resumed": 0, "failed": 0, "auto_approved": 1, "released": 0}

    assert Milestone.objects.get(pk=paid.pk).status == "released"
    assert ledger_problems() == []


def test_approval_waits_for_payouts_then_the_sweep_releases(client, rubric, stripe_settings):
    made = engagement(onboarded=False)
    paid = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)

    approved = services.milestone_approve(client=made.client, milestone_id=paid.pk)
    url = services.payout_onboarding_start(engineer=made.engineer, return_url="http://x.test/")
    httpx.get(url, timeout=5)
    deliver_webhooks(stripe_settings, client)  # account.updated turns payouts on
    swept = services.payments_sweep()

    assert approved.status == "approved"
    assert swept["released"] == 1
    assert Milestone.objects.get(pk=paid.pk).status == "released"


def test_dispute_freezes_and_staff_settle_with_a_split(client, rubric, stripe_settings, staff):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
    services.milestone_dispute(user=made.client, milestone_id=paid.pk, reason="half done")

    with pytest.raises(MilestoneStateConflict):
        services.milestone_approve(client=made.client, milestone_id=paid.pk)
    settled = services.milestone_settle(staff=staff, milestone_id=paid.pk, engineer_share_minor=30_000)

    assert settled.status == "released"
    assert stripe_settings.double.objects["charges"][paid.charge_id]["amount_refunded"] == 20_000
    assert stripe_settings.double.objects["transfers"][settled.transfer_id]["amount"] == 27_000
    booked = LedgerTransaction.objects.filter(milestone=paid).order_by("pk").values_list("kind", flat=True)
    assert list(booked) == ["fund", "settle"]
    assert ledger_problems() == []


def test_a_card_dispute_from_stripe_takes_the_money_out_of_escrow(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)

    httpx.post(f"{stripe_settings.base}/_test/charges/{paid.charge_id}/dispute")
    deliver_webhooks(stripe_settings, client)

    assert Milestone.objects.get(pk=paid.pk).status == "charged_back"
    assert ledger_problems() == []


def test_a_declined_card_leaves_the_milestone_awaiting_funds(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()

    with pytest.raises(Exception, match="declined"):
        pay_at_stripe(stripe_settings, created, card="pm_card_chargeDeclined")
    deliver_webhooks(stripe_settings, client)

    assert Milestone.objects.get(pk=created.pk).status == "awaiting_funding"
    assert not LedgerTransaction.objects.exists()


def test_one_event_delivered_ten_times_has_one_effect(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    pay_at_stripe(stripe_settings, created)
    stripe_settings.drain()
    succeeded = next(r for r in stripe_settings.collector.received if b"payment_intent.succeeded" in r[0])
    stripe_settings.collector.received[:] = [succeeded] * 10

    responses = deliver_webhooks(stripe_settings, client)

    assert [r.json()["duplicate"] for r in responses] == [False] + [True] * 9
    assert StripeEvent.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="fund").count() == 1


def test_duplicated_and_reversed_webhooks_end_in_the_same_state(client, rubric, stripe_settings):
    made = engagement()
    created = milestone(made)
    services.milestone_fund(client=made.client, milestone_id=created.pk)
    created.refresh_from_db()
    httpx.post(f"{stripe_settings.base}/_test/webhooks/hold", data={"hold": "true"})
    pay_at_stripe(stripe_settings, created)

    httpx.post(f"{stripe_settings.base}/_test/webhooks/release", data={"order": "reverse", "duplicates": "3"})
    deliver_webhooks(stripe_settings, client)

    assert Milestone.objects.get(pk=created.pk).status == "funded"
    assert LedgerTransaction.objects.filter(kind="fund").count() == 1
    assert ledger_problems() == []


def test_staff_settle_a_dispute_in_admin(client, rubric, stripe_settings):
    made = engagement()
    paid = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=paid.pk)
    services.milestone_dispute(user=made.engineer, milestone_id=paid.pk, reason="client stopped answering")
    settler = StaffFactory.create(is_superuser=True)
    client.force_login(settler)
    url = "/admin/payments/milestone/"

    form = client.post(url, {"action": "settle", "_selected_action": [paid.pk]})
    client.post(url, {"action": "settle", "_selected_action": [paid.pk], "apply": "1", f"share_{paid.pk}": "50000"})

    assert b"Engineer&#x27;s share" in form.content or b"Engineer's share" in form.content
    assert Milestone.objects.get(pk=paid.pk).status == "released"
    # The money moved in admin is recorded with the staff member who moved it.
    settled = paid.events.filter(to_status="released").get()
    assert settled.actor_id == settler.pk
    assert client.get(f"{url}{paid.pk}/change/").status_code == 200
    assert client.get("/admin/payments/ledgertransaction/").status_code == 200
    assert ledger_problems() == []
