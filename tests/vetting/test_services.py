from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import User
from marketplace.errors import Forbidden
from tests.factories import ClientFactory, EngineerFactory
from tests.vetting.conftest import in_status, score_all, submit, to_interview
from vetting import errors, selectors, services
from vetting.models import Application, ApplicationEvent, ApplicationStatus, Criterion, Score, VettedRecord
from vetting.rubric_spec import load_spec

pytestmark = pytest.mark.django_db

S = ApplicationStatus


def act(action: str, application: Application, staff: User, approver: User):
    calls = {
        "screen": lambda: services.application_start_screening(application_id=application.pk, actor=staff),
        "interview": lambda: services.application_start_interview(application_id=application.pk, actor=staff),
        "approve": lambda: services.application_approve(application_id=application.pk, actor=approver),
        "reject": lambda: services.application_reject(application_id=application.pk, actor=staff, reason="no"),
        "withdraw": lambda: services.application_withdraw(application_id=application.pk, engineer=application.engineer),
    }
    return calls[action]()


ALLOWED = [
    (S.SUBMITTED, "screen", S.SCREENING),
    (S.SUBMITTED, "reject", S.REJECTED),
    (S.SUBMITTED, "withdraw", S.WITHDRAWN),
    (S.SCREENING, "interview", S.INTERVIEW),
    (S.SCREENING, "reject", S.REJECTED),
    (S.SCREENING, "withdraw", S.WITHDRAWN),
    (S.INTERVIEW, "approve", S.APPROVED),
    (S.INTERVIEW, "reject", S.REJECTED),
    (S.INTERVIEW, "withdraw", S.WITHDRAWN),
]
ACTIONS = ["screen", "interview", "approve", "reject", "withdraw"]
REFUSED = [
    (status, action)
    for status in S.values
    for action in ACTIONS
    if (status, action) not in {(allowed[0], allowed[1]) for allowed in ALLOWED}
]


@pytest.mark.parametrize(("status", "action", "expected"), ALLOWED)
def test_allowed_move_changes_stage_and_records_who_and_when(
    rubric, engineer, staff, approver, status, action, expected
):
    application = in_status(engineer, staff, status, scored=True)
    events_before = application.events.count()

    act(action, application, staff, approver)

    application.refresh_from_db()
    assert application.status == expected
    event = application.events.latest("id")
    assert application.events.count() == events_before + 1
    assert (event.from_status, event.to_status) == (status, expected)
    assert event.actor_id == {"withdraw": engineer.pk, "approve": approver.pk}.get(action, staff.pk)


@pytest.mark.parametrize(("status", "action"), REFUSED)
def test_refused_move_changes_nothing(rubric, engineer, staff, approver, status, action):
    application = in_status(engineer, staff, status, scored=True)
    events_before = application.events.count()

    with pytest.raises(errors.TransitionNotAllowed):
        act(action, application, staff, approver)

    application.refresh_from_db()
    assert application.status == status
    assert application.events.count() == events_before


def test_no_decision_while_a_criterion_is_unscored(rubric, engineer, staff, approver):
    application = to_interview(engineer, staff)
    first_criteria = list(Score.objects.filter(application=application).values_list("criterion_id", flat=True))[:-1]
    services.interview_score(application_id=application.pk, actor=staff, scores=[(c, 4, "") for c in first_criteria])

    with pytest.raises(errors.ScoresIncomplete):
        services.application_approve(application_id=application.pk, actor=approver)
    with pytest.raises(errors.ScoresIncomplete):
        services.application_reject(application_id=application.pk, actor=staff, reason="no")

    application.refresh_from_db()
    assert application.status == S.INTERVIEW
    assert not VettedRecord.objects.exists()


def test_interview_lays_out_one_empty_score_per_criterion(rubric, engineer, staff):
    application = to_interview(engineer, staff)

    scores = Score.objects.filter(application=application)

    assert scores.count() == Criterion.objects.filter(category__rubric=rubric).count() == 28
    assert set(scores.values_list("value", flat=True)) == {None}
    assert application.interviewer_id == staff.pk


def test_scores_are_refused_for_a_criterion_of_another_rubric(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    v2 = services.rubric_create(spec=load_spec(), actor=staff)
    foreign = Criterion.objects.filter(category__rubric=v2).earliest("id")

    with pytest.raises(errors.InvalidScore):
        services.interview_score(application_id=application.pk, actor=staff, scores=[(foreign.pk, 3, "")])

    assert not Score.objects.filter(criterion=foreign).exists()


def test_scores_are_refused_outside_the_scale(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    criterion_id = Score.objects.filter(application=application).earliest("id").criterion_id

    with pytest.raises(errors.InvalidScore):
        services.interview_score(application_id=application.pk, actor=staff, scores=[(criterion_id, 5, "")])

    assert Score.objects.get(application=application, criterion_id=criterion_id).value is None


def test_approval_grants_a_record_with_derived_level_and_category_scores(rubric, engineer, staff, approver):
    application = to_interview(engineer, staff)
    score_all(application, staff, value=3)

    record = services.application_approve(application_id=application.pk, actor=approver, note="welcome")

    assert record.level == "senior"  # every criterion at 3 of 4 is 7500 bp
    assert record.score_bp == 7_500
    assert [c["key"] for c in record.category_scores] == [
        "core-concepts",
        "production-knowledge",
        "must-have-skills",
        "testing",
        "production-scenarios",
        "seniority",
    ]
    assert {c["score_bp"] for c in record.category_scores} == {7_500}
    assert record.expires_at - record.vetted_at == timedelta(days=365)


def test_approval_below_the_bar_is_refused(rubric, engineer, staff, approver):
    application = to_interview(engineer, staff)
    score_all(application, staff, value=2)  # "applied it with help; gaps show", everywhere

    with pytest.raises(errors.BelowTheBar):
        services.application_approve(application_id=application.pk, actor=approver)

    application.refresh_from_db()
    assert application.status == S.INTERVIEW


def test_a_second_open_application_is_refused(rubric, engineer):
    submit(engineer)

    with pytest.raises(errors.ApplicationAlreadyOpen):
        submit(engineer)

    assert Application.objects.filter(engineer=engineer).count() == 1


def test_a_client_cannot_apply(rubric):
    with pytest.raises(errors.NotAnEngineer):
        submit(ClientFactory.create())

    assert not Application.objects.exists()


def test_reapplying_waits_for_the_cooldown_after_rejection(rubric, engineer, staff):
    with time_machine.travel("2026-01-01 09:00Z", tick=False):
        in_status(engineer, staff, S.REJECTED)
    with time_machine.travel("2026-03-31 09:00Z", tick=False), pytest.raises(errors.CooldownActive):
        submit(engineer)
    with time_machine.travel("2026-04-01 09:00Z", tick=False):
        again = submit(engineer)

    assert again.status == S.SUBMITTED
    assert Application.objects.filter(engineer=engineer).count() == 2


def test_renewal_opens_before_expiry_while_the_record_stays_valid(rubric, engineer, staff):
    with time_machine.travel("2026-01-01 09:00Z", tick=False):
        in_status(engineer, staff, S.APPROVED)
    with time_machine.travel("2026-06-01 09:00Z", tick=False), pytest.raises(errors.AlreadyVetted, match="2026-12-02"):
        submit(engineer)
    with time_machine.travel("2026-12-02 09:00Z", tick=False):
        renewal = submit(engineer)
        still_matchable = list(selectors.matchable_engineers())

    assert renewal.status == S.SUBMITTED
    assert still_matchable == [engineer]


def test_expiry_removes_the_engineer_from_matching(rubric, engineer, staff):
    with time_machine.travel("2026-01-01 09:00Z", tick=False):
        in_status(engineer, staff, S.APPROVED)
        assert list(selectors.matchable_engineers()) == [engineer]
    with time_machine.travel("2026-12-31 08:59Z", tick=False):
        assert list(selectors.matchable_engineers()) == [engineer]
    with time_machine.travel("2027-01-01 09:00Z", tick=False):
        assert list(selectors.matchable_engineers()) == []


def test_revocation_removes_the_engineer_from_matching_at_once(rubric, engineer, staff):
    other = EngineerFactory.create()
    in_status(engineer, staff, S.APPROVED)
    in_status(other, staff, S.APPROVED)
    record = VettedRecord.objects.get(engineer=engineer)

    services.vetted_record_revoke(record_id=record.pk, actor=staff, reason="plagiarised take-home")

    assert list(selectors.matchable_engineers()) == [other]
    record.refresh_from_db()
    assert (record.revoked_by_id, record.revoke_reason) == (staff.pk, "plagiarised take-home")


def test_revocation_needs_a_reason(rubric, engineer, staff):
    in_status(engineer, staff, S.APPROVED)
    record = VettedRecord.objects.get(engineer=engineer)

    with pytest.raises(errors.ReasonRequired):
        services.vetted_record_revoke(record_id=record.pk, actor=staff, reason="  ")

    record.refresh_from_db()
    assert record.revoked_at is None


def test_a_new_rubric_version_leaves_old_scores_on_their_version(rubric, engineer, staff):
    application = to_interview(engineer, staff)
    score_all(application, staff, value=2)
    old_criteria = set(Criterion.objects.filter(category__rubric=rubric).values_list("pk", "weight"))
    spec = load_spec()
    spec["categories"][0]["criteria"][0]["weight"] = 5

    v2 = services.rubric_create(spec=spec, actor=staff)

    assert (v2.specialty, v2.version) == (rubric.specialty, rubric.version + 1)
    assert set(Criterion.objects.filter(category__rubric=rubric).values_list("pk", "weight")) == old_criteria
    assert set(
        Score.objects.filter(application=application).values_list("criterion__category__rubric_id", flat=True)
    ) == {rubric.pk}
    later = submit(EngineerFactory.create())
    assert later.rubric_id == v2.pk


def test_an_invalid_rubric_is_refused_and_nothing_is_stored(rubric, staff):
    spec = load_spec()
    spec["categories"][0]["criteria"][0]["weight"] = 9
    versions_before = set(rubric.__class__.objects.values_list("version", flat=True))

    with pytest.raises(errors.InvalidRubric, match="weight must be an integer from 1 to 5"):
        services.rubric_create(spec=spec, actor=staff)

    assert set(rubric.__class__.objects.values_list("version", flat=True)) == versions_before


def test_non_staff_cannot_move_applications(rubric, engineer):
    application = submit(engineer)

    with pytest.raises(Forbidden):
        services.application_start_screening(application_id=application.pk, actor=engineer)

    application.refresh_from_db()
    assert application.status == S.SUBMITTED
    assert ApplicationEvent.objects.filter(application=application).count() == 1


def test_queue_marks_overdue_by_stage_targets(rubric, staff):
    fresh, stale_submitted, stale_screening = EngineerFactory.create_batch(3)
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=3), tick=False):
        late = submit(stale_submitted)
    with time_machine.travel(now - timedelta(days=8), tick=False):
        very_late = submit(stale_screening)
        services.application_start_screening(application_id=very_late.pk, actor=staff)
    on_time = submit(fresh)

    queue = dict(selectors.staff_queue().values_list("pk", "is_overdue"))  # type: ignore[misc]  # an annotation
    overdue = [a.pk for a in selectors.staff_queue(overdue_only=True)]

    assert queue == {very_late.pk: True, late.pk: True, on_time.pk: False}
    assert overdue == [very_late.pk, late.pk]
