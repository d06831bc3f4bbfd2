"""Twenty approvals of one milestone at the same moment make exactly one Transfer."""

import pytest

from payments import services
from payments.models import LedgerTransaction, Milestone
from payments.selectors import ledger_problems
from tests.concurrency import race
from tests.payments.helpers import engagement, funded

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
