"""`/api/notifications`: the notification log over REST, read with a cursor and marked read."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from marketplace.auth import api_auth, current_user
from marketplace.notifications import log
from marketplace.schemas import MAX_ID, StrictIn

router = Router(tags=["notifications"], auth=api_auth)


class NotificationOut(Schema):
    seq: int
    event: str
    payload: dict[str, Any]
    sent_at: str
    read: bool


class NotificationPageOut(Schema):
    items: list[NotificationOut]
    # Pass as `after` for the next page (the seq of the last item, or the `after` you sent).
    next_after: int
    has_more: bool
    unread: int


class NotificationQuery(Schema):
    after: int = Field(0, ge=0, le=MAX_ID, description="The last seq you saw; 0 for the oldest kept.")
    limit: int = Field(50, ge=1, le=100)


class ReadIn(StrictIn):
    up_to: int = Field(..., ge=0, le=MAX_ID, strict=True, description="Mark every notification up to this seq as read.")


class ReadOut(Schema):
    up_to: int
    unread: int


@router.get("", response=NotificationPageOut, summary="My notifications after a seq, oldest first")
def notifications_list(request: HttpRequest, query: Query[NotificationQuery]) -> dict[str, Any]:
    user = current_user(request)
    rows, more = log.notifications_after(user_id=user.pk, after=query.after, limit=query.limit)
    return {
        "items": [{**log.as_frame(row), "read": row.read_at is not None} for row in rows],
        "next_after": rows[-1].seq if rows else query.after,
        "has_more": more,
        "unread": log.unread_count(user_id=user.pk),
    }


@router.post("/read", response=ReadOut, summary="Mark my notifications read up to a seq")
def notifications_read(request: HttpRequest, payload: ReadIn) -> dict[str, int]:
    user = current_user(request)
    return {"up_to": payload.up_to, "unread": log.mark_read(user_id=user.pk, up_to=payload.up_to)}
