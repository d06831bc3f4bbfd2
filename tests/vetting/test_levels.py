import pytest
from hypothesis import given
from hypothesis import strategies as st

from vetting.levels import ScoredCriterion, assess
from vetting.rubric_spec import load_spec


def one_category(values: list[int]) -> list[ScoredCriterion]:
    return [ScoredCriterion(category_key="core", weight=1, value=v) for v in values]


def ten_scores_summing_to(total: int) -> list[ScoredCriterion]:
    values = [4] * (total // 4) + ([total % 4] if total % 4 else [])
    return one_category(values + [0] * (10 - len(values)))


@pytest.mark.parametrize(
    ("total", "score_bp", "level"),
    [
        (21, 5_250, None),
        (22, 5_500, "junior"),
        (25, 6_250, "junior"),
        (26, 6_500, "mid"),
        (29, 7_250, "mid"),
        (30, 7_500, "senior"),
        (34, 8_500, "senior"),
        (35, 8_750, "staff"),
        (40, 10_000, "staff"),
    ],
)
def test_level_at_each_boundary(total, score_bp, level):
    assessment = assess(ten_scores_summing_to(total))

    assert (assessment.score_bp, assessment.level) == (score_bp, level)


def test_weights_count_and_the_score_is_floored():
    scores = [ScoredCriterion("core", weight=3, value=1), ScoredCriterion("core", weight=1, value=0)]

    assert assess(scores).score_bp == 1_875  # 10000 * 3 / 16


def test_a_weak_category_caps_senior_and_staff_at_mid():
    strong = [ScoredCriterion("core", 1, 4)] * 8
    weak = [ScoredCriterion("testing", 1, 1)] * 2

    assessment = assess(strong + weak)

    assert assessment.score_bp == 8_500
    assert assessment.category_bp == {"core": 10_000, "testing": 2_500}
    assert assessment.level == "mid"


def test_a_category_exactly_at_the_floor_does_not_cap():
    strong = [ScoredCriterion("core", 1, 4)] * 8
    even = [ScoredCriterion("testing", 1, 2)] * 2

    assessment = assess(strong + even)

    assert (assessment.score_bp, assessment.category_bp["testing"], assessment.level) == (9_000, 5_000, "staff")


def test_scores_outside_the_scale_are_refused():
    with pytest.raises(ValueError, match="outside 0-4"):
        assess(one_category([5]))


ORDER = [None, "junior", "mid", "senior", "staff"]


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 5), st.integers(0, 3)), min_size=1, max_size=30),
    st.data(),
)
def test_raising_any_score_never_lowers_the_score_or_the_level(criteria, data):
    before = [ScoredCriterion(c, w, v) for c, w, v in criteria]
    index = data.draw(st.integers(0, len(before) - 1))
    after = list(before)
    after[index] = ScoredCriterion(before[index].category_key, before[index].weight, before[index].value + 1)

    first, second = assess(before), assess(after)

    assert second.score_bp >= first.score_bp
    assert ORDER.index(second.level) >= ORDER.index(first.level)


def test_the_documented_example_on_the_shipped_rubric():
    spec = load_spec()
    scores = [
        ScoredCriterion(category["key"], criterion["weight"], 1 if category["key"] == "seniority" else 4)
        for category in spec["categories"]
        for criterion in category["criteria"]
    ]

    assessment = assess(scores)

    assert (assessment.score_bp, assessment.category_bp["seniority"], assessment.level) == (8_846, 2_500, "mid")


def test_applied_with_help_everywhere_is_below_the_bar():
    assessment = assess(one_category([2] * 28))

    assert (assessment.score_bp, assessment.level) == (5_000, None)


def test_the_must_have_category_is_a_gate_at_every_level():
    strong_elsewhere = [ScoredCriterion("core-concepts", weight=1, value=4) for _ in range(20)]
    no_must_haves = [ScoredCriterion("must-have-skills", weight=1, value=0) for _ in range(5)]

    assessment = assess(strong_elsewhere + no_must_haves)

    assert assessment.score_bp == 8_000
    assert assessment.level is None
