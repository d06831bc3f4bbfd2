"""Chat moved to the conversations app (conversations/migrations/0001_initial.py).

Only the migration state changes: the tables, their rows, constraints and indexes
stay as they are, under their hiring_requests_* names.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("hiring_requests", "0006_widening_declined"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ReadMarker"),
                migrations.DeleteModel(name="Message"),
                migrations.DeleteModel(name="Conversation"),
            ],
            database_operations=[],
        ),
    ]
