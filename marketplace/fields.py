"""A list of skill names that is a real array on PostgreSQL and JSON text elsewhere.

On PostgreSQL the column is `varchar(50)[]`, so matching can filter with the
array overlap operator behind a GIN index. SQLite, the embedded default, has no
arrays; there the same list is stored as JSON text.
"""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from marketplace.skills import normalize_skills


class SkillListFormField(forms.CharField):
    """Skills typed as "python, django, asyncio" in forms (the admin), stored normalized."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            raw = value
        else:
            raw = [part for part in (super().to_python(value) or "").split(",") if part.strip()]
        try:
            return normalize_skills(raw)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_skill") from None


class SkillListField(models.Field):  # type: ignore[type-arg]
    description = "A list of normalized skill names"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", list)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is list:
            del kwargs["default"]
        if kwargs.get("blank") is True:
            del kwargs["blank"]
        return name, path, args, kwargs

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        if connection.vendor == "postgresql":
            return "varchar(50)[]"
        return "text"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return list(json.loads(value))
        return list(value)

    def to_python(self, value: Any) -> list[str] | None:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, str):
            return list(json.loads(value))
        return list(value)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": SkillListFormField, **kwargs})

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        if value is None:
            return None
        if connection.vendor == "postgresql":
            return list(value)
        return json.dumps(list(value))


def one_of(field: str, choices: type[models.Choices], *, name: str, or_blank: bool = False) -> models.CheckConstraint:
    """A CHECK that `field` holds one of `choices`' values (or "" with `or_blank`).

    Django checks `choices=` in forms and `full_clean()` only; `save()` and `update()` write any
    string. The database refuses what the model does not list, whatever path the write took.
    """
    allowed = [choice.value for choice in choices] + ([""] if or_blank else [])
    return models.CheckConstraint(condition=models.Q(**{f"{field}__in": allowed}), name=name)
