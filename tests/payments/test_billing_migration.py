"""The data migration: an hourly engagement hired before timesheets gets its billing, waiting for a card."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.payments.helpers import engagement

BEFORE = [("payments", "0006_hourly_timesheets")]
AFTER = [("payments", "0007_billing_for_earlier_hourly_hires")]


@pytest.mark.django_db(transaction=True)
def test_earlier_hourly_hires_wait_for_a_card_after_the_migration(rubric):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        hourly = engagement(onboarded=False)
        fixed = engagement(onboarded=False)
        old.get_model("hiring_requests", "Engagement").objects.filter(pk=hourly.pk).update(rate_kind="hourly")

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

    from payments.models import HourlyBilling

    assert list(HourlyBilling.objects.values_list("engagement_id", "status")) == [
        (hourly.pk, "awaiting_payment_method")
    ]
    assert not HourlyBilling.objects.filter(engagement=fixed).exists()
