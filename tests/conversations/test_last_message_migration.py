"""The data migration: each conversation's `last_message` is its newest message by seq, or none."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversations import services
from conversations.models import Conversation
from tests.conversations.conftest import conversation_between
from tests.factories import ClientFactory, vetted_engineer

BEFORE = [("conversations", "0001_initial")]
AFTER = [("conversations", "0002_last_message")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_points_each_conversation_at_its_newest_message(rubric):
    client = ClientFactory.create()
    talked, silent = vetted_engineer(), vetted_engineer()
    conversation = conversation_between(client, talked)
    for body in ("first", "second", "third"):
        services.message_send(sender=talked, conversation_id=conversation.pk, body=body, client_msg_id=None)
    empty = conversation_between(client, silent)
    empty.messages.all().delete()
    Conversation.objects.filter(pk=empty.pk).update(last_seq=0, last_message_at=None)

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

    conversation.refresh_from_db()
    empty.refresh_from_db()
    assert conversation.last_message is not None
    assert (conversation.last_message.seq, conversation.last_message.body) == (conversation.last_seq, "third")
    assert empty.last_message is None


@pytest.mark.django_db
def test_every_message_becomes_its_conversations_last(rubric):
    client, engineer = ClientFactory.create(), vetted_engineer()
    conversation = conversation_between(client, engineer)
    sent, _ = services.message_send(sender=client, conversation_id=conversation.pk, body="hello", client_msg_id=None)
    conversation.refresh_from_db()
    assert conversation.last_message_id == sent.pk
    assert conversation.last_seq == sent.seq
    system = services.system_message_post(conversation_id=conversation.pk, payload={"event": "hired"})
    conversation.refresh_from_db()
    assert (conversation.last_message_id, conversation.last_seq) == (system.pk, system.seq)
