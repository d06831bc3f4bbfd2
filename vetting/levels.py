"""How a level follows from scores. Pure integer arithmetic: no floats, no rounding surprises.

1. Each criterion is scored 0-4 and has a weight of 1-5.
2. The weighted score, in basis points (0-10000), is
       floor(10000 * sum(weight * score) / (4 * sum(weight)))
   so 10000 means every criterion scored 4. Each category's score is the same
   sum over that category's criteria.
3. The level comes from the weighted score:
       below 5500 -> no level (below the bar: cannot be approved)
       5500-6499  -> junior
       6500-7499  -> mid
       7500-8749  -> senior
       8750+      -> staff
   A 2 on every criterion ("applied it with help; gaps show") is 5000: below the
   bar. A junior is expected to do better than "with help" on average.
4. The must-have category is a gate at every level: below 6000 there (an
   average under 2.4 of 4 on the skills the job cannot do without) there is no
   level at all, however strong the rest. Strength elsewhere cannot buy it back.
5. Senior and staff also need every category at 5000 or more; otherwise the
   level is capped at mid. Breadth is what separates them: a strong score
   carried by one area is not seniority.
"""

from collections.abc import Iterable
from dataclasses import dataclass

MAX_SCORE = 4
FULL_BP = 10_000
THRESHOLDS_BP = (("staff", 8_750), ("senior", 7_500), ("mid", 6_500), ("junior", 5_500))
SENIOR_CATEGORY_FLOOR_BP = 5_000
MUST_HAVE_CATEGORY = "must-have-skills"
MUST_HAVE_FLOOR_BP = 6_000


@dataclass(frozen=True)
class ScoredCriterion:
    category_key: str
    weight: int
    value: int


@dataclass(frozen=True)
class Assessment:
    score_bp: int
    category_bp: dict[str, int]
    level: str | None  # None: below the bar


def _bp(pairs: Iterable[tuple[int, int]]) -> int:
    pairs = list(pairs)
    total_weight = sum(weight for weight, _ in pairs)
    earned = sum(weight * value for weight, value in pairs)
    return (FULL_BP * earned) // (MAX_SCORE * total_weight)


def level_for(score_bp: int, category_bp: dict[str, int]) -> str | None:
    if category_bp.get(MUST_HAVE_CATEGORY, FULL_BP) < MUST_HAVE_FLOOR_BP:
        return None
    level = next((name for name, floor in THRESHOLDS_BP if score_bp >= floor), None)
    if level in ("senior", "staff") and min(category_bp.values()) < SENIOR_CATEGORY_FLOOR_BP:
        return "mid"
    return level


def assess(scores: Iterable[ScoredCriterion]) -> Assessment:
    scores = list(scores)
    if not scores:
        raise ValueError("an assessment needs at least one scored criterion")
    for score in scores:
        if not 0 <= score.value <= MAX_SCORE:
            raise ValueError(f"score {score.value} is outside 0-{MAX_SCORE}")
        if score.weight < 1:
            raise ValueError("weights are at least 1")
    by_category: dict[str, list[tuple[int, int]]] = {}
    for score in scores:
        by_category.setdefault(score.category_key, []).append((score.weight, score.value))
    category_bp = {key: _bp(pairs) for key, pairs in by_category.items()}
    score_bp = _bp((s.weight, s.value) for s in scores)
    return Assessment(score_bp=score_bp, category_bp=category_bp, level=level_for(score_bp, category_bp))
