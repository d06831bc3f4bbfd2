from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """Our own API's Idempotency-Key: the first response, replayed for the same key and body.

    `locked_at` says when a request took the key; a key whose request died keeps no
    response, and is taken over once it has been locked longer than
    IDEMPOTENCY_IN_FLIGHT_SECONDS.
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

    def __str__(self) -> str:
        return self.key
