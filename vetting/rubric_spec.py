"""Rubrics as data: the JSON shape, its validation, and turning it into rows.

Used by the data migration that installs the default rubric (with historical
models) and by the service staff use to add rubrics (with the real ones), so
the function takes the three model classes as arguments.
"""

import json
from pathlib import Path
from typing import Any

from vetting.levels import MUST_HAVE_CATEGORY

RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
DEFAULT_SPECIALTY = "async-python-backend"
SCALE_LENGTH = 5


def load_spec(specialty: str = DEFAULT_SPECIALTY, version: int = 1) -> dict[str, Any]:
    """A shipped rubric file. Files are frozen once released: a change is a new `-v<N>` file."""
    spec: dict[str, Any] = json.loads((RUBRIC_DIR / f"{specialty}-v{version}.json").read_text())
    return spec


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _levels(entry: dict[str, Any], where: str) -> None:
    levels = entry.get("levels")
    _require(
        isinstance(levels, list) and len(levels) == SCALE_LENGTH and all(isinstance(x, str) and x for x in levels),
        f"{where}: levels must be five descriptions, for scores 0 to 4",
    )


def validate_spec(spec: dict[str, Any]) -> None:
    """Raise ValueError naming the first problem, so staff can fix a rubric before it is stored."""
    for field in ("specialty", "title"):
        _require(isinstance(spec.get(field), str) and spec[field].strip() != "", f"{field} is required")
    _levels({"levels": spec.get("scale")}, "scale")
    categories = spec.get("categories")
    if not isinstance(categories, list) or not categories:
        raise ValueError("a rubric needs at least one category")
    category_keys: set[str] = set()
    for category in categories:
        key = category.get("key")
        _require(isinstance(key, str) and key != "", "every category needs a key")
        _require(key not in category_keys, f"category key {key!r} appears twice")
        category_keys.add(key)
        _require(isinstance(category.get("name"), str) and category["name"] != "", f"category {key}: name is required")
        criteria = category.get("criteria")
        if not isinstance(criteria, list) or not criteria:
            raise ValueError(f"category {key}: needs at least one criterion")
        criterion_keys: set[str] = set()
        for criterion in criteria:
            ckey = criterion.get("key")
            where = f"criterion {key}/{ckey}"
            _require(isinstance(ckey, str) and ckey != "", f"category {key}: every criterion needs a key")
            _require(ckey not in criterion_keys, f"{where} appears twice")
            criterion_keys.add(ckey)
            _require(isinstance(criterion.get("title"), str) and criterion["title"] != "", f"{where}: title required")
            _require(isinstance(criterion.get("probe"), str) and criterion["probe"] != "", f"{where}: probe required")
            weight = criterion.get("weight")
            _require(isinstance(weight, int) and 1 <= weight <= 5, f"{where}: weight must be an integer from 1 to 5")
            if "levels" in criterion:
                _levels(criterion, where)
    # The must-have gate (vetting.levels) reads this category: without it every level would skip the gate.
    _require(
        MUST_HAVE_CATEGORY in category_keys,
        f"a rubric needs a {MUST_HAVE_CATEGORY!r} category (the gate at every level)",
    )


def build_rubric(
    spec: dict[str, Any],
    *,
    version: int,
    created_by_id: int | None,
    rubric_model: Any,
    category_model: Any,
    criterion_model: Any,
) -> Any:
    validate_spec(spec)
    rubric = rubric_model.objects.create(
        specialty=spec["specialty"],
        version=version,
        title=spec["title"],
        description=spec.get("description", ""),
        scale=spec["scale"],
        created_by_id=created_by_id,
    )
    for position, category in enumerate(spec["categories"]):
        row = category_model.objects.create(
            rubric=rubric,
            key=category["key"],
            name=category["name"],
            description=category.get("description", ""),
            position=position,
        )
        criterion_model.objects.bulk_create(
            criterion_model(
                category=row,
                key=criterion["key"],
                title=criterion["title"],
                probe=criterion["probe"],
                question=criterion.get("question", ""),
                strong_answer=criterion.get("strong_answer", ""),
                weight=criterion["weight"],
                levels=criterion.get("levels", spec["scale"]),
                position=index,
            )
            for index, criterion in enumerate(category["criteria"])
        )
    return rubric
