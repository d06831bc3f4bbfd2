"""Hourly engagements hired before timesheets existed wait for the client's card like new ones."""

from django.db import migrations


def open_billing(apps, schema_editor):
    Engagement = apps.get_model("hiring_requests", "Engagement")
    HourlyBilling = apps.get_model("payments", "HourlyBilling")
    waiting = Engagement.objects.filter(rate_kind="hourly", billing__isnull=True)
    HourlyBilling.objects.bulk_create(
        [HourlyBilling(engagement=engagement, status="awaiting_payment_method") for engagement in waiting]
    )


class Migration(migrations.Migration):
    dependencies = [("payments", "0006_hourly_timesheets"), ("hiring_requests", "0007_chat_to_conversations")]

    operations = [migrations.RunPython(open_billing, migrations.RunPython.noop)]
