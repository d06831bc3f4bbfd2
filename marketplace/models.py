from django.conf import settings
from django.db import models
from django.utils import timezone

from marketplace.fields import one_of


class IdempotencyRecord(models.Model):
    """Our own API's Idempotency-Key: the first response, replayed for the same key and request.

    `locked_at` says when a request took the key; a key whose request died keeps no
    response, and is taken over once it has been locked longer than
    IDEMPOTENCY_IN_FLIGHT_SECONDS. `created_at` starts the key's window
    (IDEMPOTENCY_KEY_TTL_SECONDS); past it the key is forgotten and the row purged.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    locked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table predates this app; it was payments' before the helper became cross-cutting.
        db_table = "payments_idempotencyrecord"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return self.key


class Notification(models.Model):
    """One thing a user is told, in their own sequence: the log `/ws/notifications/` and the API read.

    The row is written in the transaction of the change it reports, with no `seq`.
    Right after that commit, `marketplace.notifications.log.publish` gives the user's
    pending rows the next numbers in order (under a lock on the user's stream), then
    pushes them. So seq order is the order the numbers were given, a reader asking
    for "after seq N" never skips a row that commits late, and a row whose process
    died before publishing is numbered by the sweep a few seconds later.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    event = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="notification_seq_once_per_user")]
        indexes = [
            models.Index(fields=["created_at"], name="notification_unnumbered", condition=models.Q(seq=None)),
            models.Index(fields=["created_at"], name="notification_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.seq} for user {self.user_id}"


class NotificationStream(models.Model):
    """A user's last notification seq. Its row lock orders the numbering of their notifications."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"user {self.user_id} at seq {self.last_seq}"


class EmailDelivery(models.TextChoices):
    """How a user wants one kind of notification by email."""

    IMMEDIATELY = "immediately", "Immediately"
    DAILY = "daily", "In a daily digest"
    NEVER = "never", "Never"


class EmailPreference(models.Model):
    """A user's choice for one notification kind; no row means IMMEDIATELY (marketplace.notifications.kinds)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=64)
    delivery = models.CharField(max_length=16, choices=EmailDelivery.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="email_preference_once_per_kind"),
            one_of("delivery", EmailDelivery, name="marketplace_emailpreference_delivery_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.delivery} for user {self.user_id}"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending (to be sent when due)"
    DIGEST = "digest", "Waiting for the daily digest"
    SENDING = "sending", "Sending (claimed by one task)"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped (turned off, read, or seen online)"
    FAILED = "failed", "Failed (retries exhausted)"


class EmailOutbox(models.Model):
    """The email of one notification: written with the notification, sent at most once.

    A sender claims the row by compare-and-set (PENDING or DIGEST -> SENDING) before it
    talks to SMTP, in no transaction; a second run of the same task finds it claimed or
    sent and does nothing. `claim` names the run that holds it, so a digest can claim
    many rows at once and read back exactly those.
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, default="email")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    due_at = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="email_outbox_once_per_channel"),
            one_of("status", OutboxStatus, name="marketplace_emailoutbox_status_valid"),
        ]
        indexes = [
            models.Index(
                fields=["status", "due_at"],
                name="email_outbox_waiting",
                condition=models.Q(status__in=["pending", "digest", "sending"]),
            ),
            models.Index(fields=["user", "status"], name="email_outbox_user"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} email for user {self.user_id} ({self.status})"


class Presence(models.Model):
    """When a user last had a live websocket (refreshed by its heartbeat): "online meanwhile" for chat emails."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"user {self.user_id} last seen {self.last_seen_at:%Y-%m-%d %H:%M}"


class ReminderSent(models.Model):
    """A reminder of one kind about one subject (an invitation, a timesheet), sent once."""

    kind = models.CharField(max_length=64)
    subject_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "subject_id"], name="reminder_once_per_subject")]

    def __str__(self) -> str:
        return f"{self.kind} about #{self.subject_id}"
