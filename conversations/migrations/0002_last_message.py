"""Conversation.last_message: the message with seq == last_seq, so a list joins it instead of a subquery per row."""

import django.db.models.deletion
from django.db import migrations, models

# Plain SQL, the same on PostgreSQL and SQLite: each conversation's newest message by seq.
BACKFILL = """
UPDATE hiring_requests_conversation
SET last_message_id = (
    SELECT m.id FROM hiring_requests_message m
    WHERE m.conversation_id = hiring_requests_conversation.id
    ORDER BY m.seq DESC
    LIMIT 1
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="last_message",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="conversations.message",
            ),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
