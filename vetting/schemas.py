from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field, StrictInt

from marketplace.levels import Level
from marketplace.schemas import Id, RowOut, StrictIn, WebUrl
from vetting.models import ApplicationStatus


class ApplicationIn(StrictIn):
    statement: str = Field(min_length=20, max_length=5_000)
    links: list[WebUrl] = Field(default_factory=list, max_length=10)
    specialty: str = Field(default="async-python-backend", max_length=80)


class DecisionOut(Schema):
    """What the engineer sees of a decision: the outcome and the reason, not the interview notes."""

    level: Level | None = Field(description="The level granted; null for a rejection.")
    score_bp: int | None
    reason: str
    decided_at: datetime | None


class MyApplicationOut(Schema):
    id: int
    status: ApplicationStatus
    specialty: str
    rubric_version: int
    submitted_at: datetime
    stage_entered_at: datetime
    decision: DecisionOut | None

    @staticmethod
    def resolve_specialty(obj: Any) -> str:
        return str(obj.rubric.specialty)

    @staticmethod
    def resolve_rubric_version(obj: Any) -> int:
        return int(obj.rubric.version)

    @staticmethod
    def resolve_decision(obj: Any) -> dict[str, Any] | None:
        if obj.status not in ("approved", "rejected"):
            return None
        return {
            "level": obj.level or None,
            "score_bp": obj.score_bp,
            "reason": obj.decision_reason,
            "decided_at": obj.decided_at,
        }


class CategoryScoreOut(RowOut):
    key: str
    name: str
    score_bp: int


class VettedStatusOut(Schema):
    record_id: int = Field(alias="id")
    level: Level
    score_bp: int
    category_scores: list[CategoryScoreOut]
    vetted_at: datetime
    expires_at: datetime


class EngineerCardOut(RowOut):
    engineer_id: int
    full_name: str
    headline: str
    # Every skill on the profile; the ones vetting assessed, and the ones only declared by the engineer.
    skills: list[str]
    vetted_skills: list[str]
    declared_skills: list[str]
    level: Level
    category_scores: list[CategoryScoreOut]
    vetted_at: datetime
    expires_at: datetime


class QueueItemOut(Schema):
    id: int
    engineer_id: int
    engineer_email: str
    status: ApplicationStatus
    submitted_at: datetime
    stage_entered_at: datetime
    is_overdue: bool
    interviewer_id: int | None

    @staticmethod
    def resolve_engineer_email(obj: Any) -> str:
        return str(obj.engineer.email)


class ScoreOut(Schema):
    criterion_id: int
    criterion_key: str
    category_key: str
    title: str
    weight: int
    value: int | None
    note: str

    @staticmethod
    def resolve_criterion_key(obj: Any) -> str:
        return str(obj.criterion.key)

    @staticmethod
    def resolve_category_key(obj: Any) -> str:
        return str(obj.criterion.category.key)

    @staticmethod
    def resolve_title(obj: Any) -> str:
        return str(obj.criterion.title)

    @staticmethod
    def resolve_weight(obj: Any) -> int:
        return int(obj.criterion.weight)


class EventOut(Schema):
    from_status: ApplicationStatus | None = Field(description="null for the submission, which starts the history.")
    to_status: ApplicationStatus
    actor_id: int
    note: str
    created_at: datetime

    @staticmethod
    def resolve_from_status(event: Any) -> str | None:
        return event.from_status or None


class StaffApplicationOut(Schema):
    id: int
    engineer_id: int
    status: ApplicationStatus
    rubric_id: int
    headline: str
    skills: list[str]
    links: list[str]
    statement: str
    submitted_at: datetime
    interviewer_id: int | None
    decision_reason: str
    score_bp: int | None
    level: Level | None = Field(description="The level granted; null until approved.")
    scores: list[ScoreOut]
    events: list[EventOut]

    @staticmethod
    def resolve_level(obj: Any) -> str | None:
        return obj.level or None

    @staticmethod
    def resolve_scores(obj: Any) -> list[Any]:
        # The current version of each criterion's score.
        return [score for score in obj.scores.all() if score.superseded_at is None]

    @staticmethod
    def resolve_events(obj: Any) -> list[Any]:
        return list(obj.events.all())


class InterviewIn(StrictIn):
    interviewer_id: Id | None = None
    note: str = Field(default="", max_length=5_000)


class ScoreIn(StrictIn):
    criterion_id: Id
    value: StrictInt = Field(ge=0, le=4)
    note: str = Field(default="", max_length=5_000)


class ScoresIn(StrictIn):
    scores: list[ScoreIn] = Field(min_length=1, max_length=200)


class CriterionOut(Schema):
    id: int
    key: str
    title: str
    probe: str
    question: str
    strong_answer: str
    weight: int
    levels: list[str] = Field(description="What each score from 0 to 4 looks like, lowest first.")


class CategoryOut(Schema):
    id: int
    key: str
    name: str
    description: str
    criteria: list[CriterionOut]

    @staticmethod
    def resolve_criteria(obj: Any) -> list[Any]:
        return list(obj.criteria.all())


class RubricOut(Schema):
    id: int
    specialty: str
    version: int
    title: str
    created_at: datetime


class RubricDetailOut(RubricOut):
    description: str
    scale: list[str]
    categories: list[CategoryOut]

    @staticmethod
    def resolve_categories(obj: Any) -> list[Any]:
        return list(obj.categories.all())


class RubricIn(StrictIn):
    """A rubric as JSON: see vetting/rubrics/async-python-backend.json for the shape."""

    specialty: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    scale: list[str]
    categories: list[dict[str, Any]]
