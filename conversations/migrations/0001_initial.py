"""Chat, moved here from hiring_requests (hiring_requests/migrations/0007_chat_to_conversations.py).

The tables were created by hiring_requests/migrations/0002_chat.py and keep their
names (each model's Meta.db_table), constraints and indexes: this migration only
takes the models into this app's state, and creates nothing in the database.
On a database that already has them, the content types (and so the permissions)
move to this app's label too.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

CHAT_MODELS = ("conversation", "message", "readmarker")


def _relabel_content_types(apps, schema_editor, *, old: str, new: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    for model in CHAT_MODELS:
        if not content_types.filter(app_label=new, model=model).exists():
            content_types.filter(app_label=old, model=model).update(app_label=new)


def content_types_forward(apps, schema_editor):
    _relabel_content_types(apps, schema_editor, old="hiring_requests", new="conversations")


def content_types_backward(apps, schema_editor):
    _relabel_content_types(apps, schema_editor, old="conversations", new="hiring_requests")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("hiring_requests", "0007_chat_to_conversations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Conversation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("last_seq", models.PositiveBigIntegerField(default=0)),
                        ("last_message_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "client",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "engineer",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "request",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="conversations",
                                to="hiring_requests.hiringrequest",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "hiring_requests_conversation",
                        "indexes": [
                            models.Index(fields=["client", "-last_message_at"], name="chat_client_recent"),
                            models.Index(fields=["engineer", "-last_message_at"], name="chat_engineer_recent"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("request", "engineer"), name="chat_one_conversation_per_engineer"
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Message",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seq", models.PositiveBigIntegerField()),
                        (
                            "kind",
                            models.CharField(
                                choices=[("text", "Text"), ("system", "System")], default="text", max_length=8
                            ),
                        ),
                        ("body", models.TextField(blank=True)),
                        ("payload", models.JSONField(blank=True, default=dict)),
                        ("client_msg_id", models.CharField(blank=True, default="", max_length=64)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "conversation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="messages",
                                to="conversations.conversation",
                            ),
                        ),
                        (
                            "sender",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "hiring_requests_message",
                        "ordering": ["conversation", "seq"],
                        "constraints": [
                            models.UniqueConstraint(fields=("conversation", "seq"), name="chat_message_seq_unique"),
                            models.UniqueConstraint(
                                condition=models.Q(("client_msg_id", ""), _negated=True),
                                fields=("conversation", "sender", "client_msg_id"),
                                name="chat_message_client_id_once",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("kind", "system"), ("sender__isnull", False), _connector="OR"),
                                name="chat_text_has_sender",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ReadMarker",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("last_read_seq", models.PositiveBigIntegerField(default=0)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "conversation",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="read_markers",
                                to="conversations.conversation",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "hiring_requests_readmarker",
                        "constraints": [
                            models.UniqueConstraint(fields=("conversation", "user"), name="chat_read_marker_once"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_forward, content_types_backward),
    ]
