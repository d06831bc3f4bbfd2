from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import AliasPath, Field, field_validator

from conversations.models import MessageKind
from marketplace.notifications.schemas import EventPayloadOut
from marketplace.schemas import BodyCursor, Cursor, QueryIn, RowOut, StrictIn


class MessageOut(Schema):
    id: int
    seq: int
    conversation_id: int
    sender_id: int | None
    kind: MessageKind
    body: str
    payload: EventPayloadOut = Field(description="Empty for text; what happened for a system message.")
    client_msg_id: str | None
    created_at: datetime

    @staticmethod
    def resolve_client_msg_id(obj: Any) -> str | None:
        return obj.client_msg_id or None


class MessageIn(StrictIn):
    body: str = Field(min_length=1, max_length=4_000)
    client_msg_id: str | None = Field(default=None, min_length=1, max_length=64)


class ReadIn(StrictIn):
    up_to: BodyCursor


class ReadOut(Schema):
    up_to: int


class ConversationOut(RowOut):
    id: int
    request_id: int
    request_title: str = Field(validation_alias=AliasPath("request", "title"))
    client_id: int
    engineer_id: int
    last_seq: int
    last_message_at: datetime | None
    last_message: str | None = Field(description="The last message's text; `(event)` for a system message.")
    unread: int

    @field_validator("last_message", mode="before")
    @classmethod
    def _preview(cls, last: Any) -> str | None:
        if last is None:
            return None
        return str(last.body) if last.kind == "text" else "(event)"


class MessageQuery(QueryIn):
    after: Cursor | None = Field(default=None, description="Only messages with a seq above this, oldest first.")
    before: Cursor | None = Field(
        default=None, description="Only messages with a seq below this, newest first (scrolling back)."
    )
