from django.conf import settings
from django.db import models
from django.utils import timezone


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
