"""Every field with `choices=` is checked by the database too (marketplace.fields.one_of)."""

from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction

from hiring_requests.models import HiringRequest
from tests.factories import HiringRequestFactory

PRODUCT_APPS = {"marketplace", "accounts", "vetting", "hiring_requests", "conversations", "payments", "reviews"}


def _choice_fields() -> list[tuple[type[models.Model], models.Field[Any, Any]]]:
    return [
        (model, field)
        for model in apps.get_models()
        if model._meta.app_label in PRODUCT_APPS
        for field in model._meta.concrete_fields
        if field.choices and not field.is_relation
    ]


def _checked_values(model: type[models.Model], name: str) -> set[str] | None:
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.CheckConstraint):
            children: list[Any] = list(constraint.condition.children)  # type: ignore[union-attr]
            if len(children) == 1 and children[0][0] == f"{name}__in":
                return set(children[0][1])
    return None


@pytest.mark.parametrize(
    ("model", "field"), _choice_fields(), ids=lambda value: getattr(value, "__name__", getattr(value, "name", ""))
)
def test_the_database_checks_every_choice_field(model, field):
    listed = {value for value, _ in field.flatchoices} | ({""} if field.blank else set())
    assert _checked_values(model, field.name) == listed


@pytest.mark.django_db
def test_a_status_no_model_lists_is_refused_by_the_database(rubric):
    request = HiringRequestFactory.create()

    with pytest.raises(IntegrityError), transaction.atomic():
        HiringRequest.objects.filter(pk=request.pk).update(status="raised")

    request.refresh_from_db()
    assert request.status == "open"
