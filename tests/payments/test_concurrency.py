"""Twenty approvals of one milestone at the same moment make exactly one Transfer."""

import pytest
from asgiref.sync import async_to_sync

from marketplace.idempotency import aidempotent
from payments import services
from payments.models import LedgerTransaction, Milestone
from payments.selectors import ledger_problems
from tests.concurrency import race
from tests.payments.helpers import engagement, funded, milestone

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_approvals_make_one_transfer(client, rubric, stripe_settings):
    made = engagement()
    work = funded(stripe_settings, client, made)
    services.milestone_submit(engineer=made.engineer, milestone_id=work.pk)

    outcomes = race(*[lambda: services.milestone_approve(client=made.client, milestone_id=work.pk)] * 20)

    released = [o for o in outcomes if isinstance(o, Milestone)]
    refused = [type(o).__name__ for o in outcomes if not isinstance(o, Milestone)]
    assert len(released) == 1
    assert refused == ["MilestoneStateConflict"] * 19
    assert len(stripe_settings.double.objects["transfers"]) == 1
    assert LedgerTransaction.objects.filter(kind="release").count() == 1
    assert ledger_problems() == []


def test_the_same_idempotency_key_sent_concurrently_runs_once(rubric, stripe_settings):
    made = engagement()
    created = milestone(made)

    async def run():
        funded = await services.amilestone_fund(client=made.client, milestone_id=created.pk)
        return 200, funded.payment_intent_id

    def fund():
        return async_to_sync(aidempotent)(
            user=made.client, key="same-key", fingerprint_of=["fund", created.pk], run=run
        )

    outcomes = race(fund, fund, fund)

    replies = [o for o in outcomes if isinstance(o, tuple)]
    assert len(stripe_settings.double.objects["payment_intents"]) == 1
    assert {type(o).__name__ for o in outcomes} <= {"Answer", "IdempotencyKeyInFlight"}
    assert len({reply[1] for reply in replies}) == 1
