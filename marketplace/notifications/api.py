"""`/api/notifications`: the notification log over REST, read with a cursor and marked read."""

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from marketplace.auth import api_auth, current_user
from marketplace.models import Notification
from marketplace.notifications import log, preferences
from marketplace.notifications.kinds import KINDS
from marketplace.notifications.schemas import EventPayloadOut
from marketplace.schemas import MAX_ID, QueryIn, StrictIn

router = Router(tags=["notifications"], auth=api_auth)


class NotificationOut(Schema):
    seq: int
    event: str = Field(description="What happened, such as invitation.created or milestone.changed (docs/api.md).")
    payload: EventPayloadOut
    sent_at: datetime = Field(validation_alias="created_at")
    read: bool

    @staticmethod
    def resolve_read(row: Notification) -> bool:
        return row.read_at is not None


class NotificationQuery(QueryIn):
    after: int = Field(0, ge=0, le=MAX_ID, description="Only notifications with a seq above this; 0 for all kept.")


class UnreadOut(Schema):
    unread: int


class NotificationsReadIn(StrictIn):
    up_to: int = Field(..., ge=0, le=MAX_ID, strict=True, description="Mark every notification up to this seq as read.")


class NotificationsReadOut(Schema):
    up_to: int
    unread: int


@router.get("", response=list[NotificationOut], summary="My notifications, oldest first")
@paginate
def notifications_list(request: HttpRequest, filters: Query[NotificationQuery]) -> Any:
    return log.numbered_of(user_id=current_user(request).pk, after=filters.after)


@router.get("/unread", response=UnreadOut, summary="How many of my notifications are unread")
def notifications_unread(request: HttpRequest) -> dict[str, int]:
    return {"unread": log.unread_count(user_id=current_user(request).pk)}


@router.post("/read", response=NotificationsReadOut, summary="Mark my notifications read up to a seq")
def notifications_read(request: HttpRequest, payload: NotificationsReadIn) -> dict[str, int]:
    user = current_user(request)
    return {"up_to": payload.up_to, "unread": log.mark_read(user_id=user.pk, up_to=payload.up_to)}


Delivery = Literal["immediately", "daily", "never"]


def _kinds_enum(schema: dict[str, Any]) -> None:
    # Read when the document is built, so kinds other apps register when ready are listed too.
    schema["enum"] = sorted(KINDS)


class EmailPreferenceOut(Schema):
    kind: str = Field(description="A notification kind (docs/notifications.md).", json_schema_extra=_kinds_enum)
    description: str
    delivery: Delivery
    can_turn_off: bool = Field(description="False for money and security emails: always sent immediately.")
    partly_essential: bool = Field(
        description="Some notifications of this kind are essential (a failed charge) and come whatever you choose."
    )


class EmailPreferencesOut(Schema):
    preferences: list[EmailPreferenceOut]


class EmailPreferencesIn(StrictIn):
    preferences: dict[str, Delivery] = Field(
        ...,
        max_length=100,
        description="Kind -> immediately, daily (one digest a day) or never. Kinds left out keep their choice.",
    )


@router.get(
    "/email-preferences", response=EmailPreferencesOut, summary="How each kind of notification is emailed to me"
)
def email_preferences_get(request: HttpRequest) -> dict[str, Any]:
    return {"preferences": preferences.email_preferences_of(user=current_user(request))}


@router.put("/email-preferences", response=EmailPreferencesOut, summary="Choose how kinds of notification are emailed")
def email_preferences_put(request: HttpRequest, payload: EmailPreferencesIn) -> dict[str, Any]:
    user = current_user(request)
    return {"preferences": preferences.email_preferences_set(user=user, choices=dict(payload.preferences))}
