"""Chat: one conversation per (request, engineer), its messages in seq order, and read markers."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketplace.fields import one_of


class Conversation(models.Model):
    """One per (request, engineer): the client and that engineer talk here; staff may read."""

    request = models.ForeignKey("hiring_requests.HiringRequest", on_delete=models.CASCADE, related_name="conversations")
    engineer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The seq of the newest message. Messages take seq under a lock on this row, so seq
    # order is commit order and "everything after seq N" never skips a late commit.
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # The message with seq == last_seq, set with it under the same lock: a conversation list
    # reads it with a join rather than a subquery per row.
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The tables were created by hiring_requests (0002_chat) and keep their names.
        db_table = "hiring_requests_conversation"
        constraints = [
            models.UniqueConstraint(fields=["request", "engineer"], name="chat_one_conversation_per_engineer")
        ]
        indexes = [
            models.Index(fields=["client", "-last_message_at"], name="chat_client_recent"),
            models.Index(fields=["engineer", "-last_message_at"], name="chat_engineer_recent"),
        ]

    def __str__(self) -> str:
        return f"Conversation on {self.request.title} with {self.engineer.email}"

    def is_member(self, user_id: int) -> bool:
        return user_id in (self.client_id, self.engineer_id)

    def other_member(self, user_id: int) -> int:
        """The member who is not `user_id` (the engineer for the client, the client for the engineer)."""
        return self.engineer_id if user_id == self.client_id else self.client_id


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    SYSTEM = "system", "System"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=MessageKind.choices, default=MessageKind.TEXT)
    body = models.TextField(blank=True)
    # System messages: {"event": "invitation.accepted" | "hired" | "staff.viewed" | ..., ...}.
    payload = models.JSONField(default=dict, blank=True)
    # Chosen by the sender to make a resend idempotent; empty when not given.
    client_msg_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "hiring_requests_message"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_msg_id"],
                condition=~Q(client_msg_id=""),
                name="chat_message_client_id_once",
            ),
            models.CheckConstraint(condition=Q(kind="system") | Q(sender__isnull=False), name="chat_text_has_sender"),
            one_of("kind", MessageKind, name="conversations_message_kind_valid"),
        ]
        ordering = ["conversation", "seq"]

    def __str__(self) -> str:
        return f"Message {self.seq} in conversation #{self.conversation_id}"


class ReadMarker(models.Model):
    """How far a member has read; unread counts are the others' messages after it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_markers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "hiring_requests_readmarker"
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="chat_read_marker_once")]

    def __str__(self) -> str:
        return f"{self.user.email} has read conversation #{self.conversation_id} up to message {self.last_read_seq}"
