"""The payload of a notification or a system message, as the OpenAPI document describes it."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_serializer

from payments.models import MilestoneStatus
from vetting.models import ApplicationStatus

# The events that carry a status report a milestone's (milestone.changed) or an application's (application.moved).
ObjectStatus = Annotated[
    str, WithJsonSchema({"type": "string", "enum": sorted(set(MilestoneStatus.values) | set(ApplicationStatus.values))})
]


class ShortlistPlaceOut(BaseModel):
    engineer_id: int
    score_bp: int
    agreed_rate_minor: int | None = None


class EventPayloadOut(BaseModel):
    """What a notification or a system message carries; which fields depend on its `event` (docs/api.md).

    Ids name the objects to fetch for the whole story; times are ISO 8601 UTC; money is minor units.
    Fields a given event does not carry are absent, not null. New fields may appear.
    """

    model_config = ConfigDict(extra="allow")

    event: str | None = Field(default=None, description="For system messages: what happened.")
    request_id: int | None = None
    invitation_id: int | None = None
    engagement_id: int | None = None
    milestone_id: int | None = None
    conversation_id: int | None = None
    application_id: int | None = None
    engineer_id: int | None = None
    staff_id: int | None = None
    seq: int | None = Field(default=None, description="A message's seq in its conversation.")
    title: str | None = None
    name: str | None = None
    status: ObjectStatus | None = Field(default=None, description="A milestone's or an application's new status.")
    reason: str | None = None
    amount_minor: int | None = None
    payouts_enabled: bool | None = None
    deadline: str | None = None
    expires_at: str | None = None
    step: int | None = None
    change: str | None = None
    shortlist: list[ShortlistPlaceOut] | None = None

    @model_serializer(mode="wrap")
    def _only_what_was_sent(self, handler: Any) -> Any:
        data = handler(self)
        sent = set(self.model_fields_set) | set(self.model_extra or {})
        return {key: value for key, value in data.items() if key in sent}
