"""The permission matrix over every vetting endpoint, and what each actor sees."""

import json

import pytest

from accounts.models import User
from tests.factories import ClientFactory, EngineerFactory, StaffFactory
from tests.vetting.conftest import STATEMENT, advance_to_interview, in_status, score_all, submit, to_interview
from vetting.models import Application, ApplicationEvent, ApplicationStatus, Rubric, Score, VettedRecord
from vetting.rubric_spec import load_spec

pytestmark = pytest.mark.django_db

S = ApplicationStatus


def call(client, method, path, body=None, user: User | None = None):
    if user is not None:
        client.force_login(user)
    else:
        client.logout()
    kwargs = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(path, **kwargs)


def snapshot() -> tuple[object, ...]:
    """Everything a vetting write could change."""
    return (
        list(Application.objects.order_by("pk").values_list("pk", "status", "interviewer_id", "decided_at")),
        ApplicationEvent.objects.count(),
        list(Score.objects.order_by("pk").values_list("pk", "value")),
        list(VettedRecord.objects.order_by("pk").values_list("pk", "revoked_at")),
        Rubric.objects.count(),
    )


@pytest.fixture
def world(rubric):
    staff = StaffFactory.create()
    owner = EngineerFactory.create()
    return {
        "staff": staff,
        "approver": StaffFactory.create(),
        "owner": owner,
        "other_engineer": EngineerFactory.create(),
        "client": ClientFactory.create(),
        "anonymous": None,
    }


def staff_endpoints(application: Application, record_id: int, criterion_id: int, rubric_id: int):
    a = application.pk
    return [
        ("get", "/api/vetting/staff/queue", None),
        ("get", f"/api/vetting/staff/applications/{a}", None),
        ("post", f"/api/vetting/staff/applications/{a}/screen", {"note": "hi"}),
        ("post", f"/api/vetting/staff/applications/{a}/interview", {}),
        (
            "put",
            f"/api/vetting/staff/applications/{a}/scores",
            {"scores": [{"criterion_id": criterion_id, "value": 4}]},
        ),
        ("post", f"/api/vetting/staff/applications/{a}/approve", {"note": ""}),
        ("post", f"/api/vetting/staff/applications/{a}/reject", {"reason": "no"}),
        ("post", f"/api/vetting/staff/records/{record_id}/revoke", {"reason": "fraud"}),
        ("get", "/api/vetting/staff/rubrics", None),
        ("get", f"/api/vetting/staff/rubrics/{rubric_id}", None),
        ("post", "/api/vetting/staff/rubrics", load_spec()),
    ]


@pytest.mark.parametrize("role", ["owner", "other_engineer", "client", "anonymous"])
def test_every_staff_endpoint_refuses_non_staff_and_changes_nothing(client, world, role):
    staff, owner = world["staff"], world["owner"]
    application = to_interview(owner, staff)
    vetted = EngineerFactory.create()
    in_status(vetted, staff, S.APPROVED)
    record = VettedRecord.objects.get(engineer=vetted)
    criterion_id = Score.objects.filter(application=application).earliest("id").criterion_id
    before = snapshot()

    for method, path, body in staff_endpoints(application, record.pk, criterion_id, application.rubric_id):
        response = call(client, method, path, body, world[role])

        expected = 401 if role == "anonymous" else 403
        assert (path, response.status_code) == (path, expected)
        assert response.json()["code"] == ("not_authenticated" if role == "anonymous" else "forbidden")
    assert snapshot() == before


def test_staff_take_an_application_from_submitted_to_approved_through_the_api(client, world):
    staff, owner = world["staff"], world["owner"]
    application = submit(owner)
    base = f"/api/vetting/staff/applications/{application.pk}"

    assert call(client, "get", "/api/vetting/staff/queue", user=staff).json()["items"][0]["id"] == application.pk
    assert call(client, "post", f"{base}/screen", {"note": "looks promising"}, staff).json()["status"] == "screening"
    interview = call(client, "post", f"{base}/interview", {}, staff).json()
    assert interview["status"] == "interview"
    assert interview["interviewer_id"] == staff.pk
    scores = [{"criterion_id": s["criterion_id"], "value": 4, "note": "sharp"} for s in interview["scores"]]
    assert call(client, "put", f"{base}/scores", {"scores": scores}, staff).status_code == 200
    approved = call(client, "post", f"{base}/approve", {"note": "Welcome aboard"}, world["approver"]).json()

    assert (approved["status"], approved["level"], approved["score_bp"]) == ("approved", "staff", 10_000)
    assert [e["to_status"] for e in approved["events"]] == ["submitted", "screening", "interview", "approved"]


def test_a_refused_transition_is_a_409_with_a_stable_code(client, world):
    application = submit(world["owner"])

    response = call(
        client, "post", f"/api/vetting/staff/applications/{application.pk}/approve", {"note": ""}, world["staff"]
    )

    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_approving_with_unscored_criteria_is_a_409(client, world):
    application = to_interview(world["owner"], world["staff"])

    response = call(
        client, "post", f"/api/vetting/staff/applications/{application.pk}/approve", {"note": ""}, world["approver"]
    )

    assert response.status_code == 409
    assert response.json()["code"] == "scores_incomplete"


def test_the_interviewer_cannot_approve_what_they_scored(client, world):
    application = to_interview(world["owner"], world["staff"])
    score_all(application, world["staff"], value=4)

    response = call(
        client, "post", f"/api/vetting/staff/applications/{application.pk}/approve", {"note": ""}, world["staff"]
    )

    assert response.status_code == 409
    assert response.json()["code"] == "four_eyes"
    application.refresh_from_db()
    assert application.status == S.INTERVIEW


def test_engineer_applies_and_sees_stage_and_decision_but_not_interview_notes(client, world):
    owner, staff = world["owner"], world["staff"]
    created = call(
        client, "post", "/api/vetting/applications", {"statement": STATEMENT, "links": ["https://gh.example/me"]}, owner
    )
    assert created.status_code == 201
    assert created.json()["status"] == "submitted"
    application = Application.objects.get(pk=created.json()["id"])
    in_review = advance_to_interview(application, staff)
    score_all(in_review, staff, value=3)
    call(
        client,
        "post",
        f"/api/vetting/staff/applications/{application.pk}/approve",
        {"note": "Great depth"},
        world["approver"],
    )

    response = call(client, "get", "/api/vetting/applications/mine", user=owner)

    item = response.json()["items"][0]
    assert item["status"] == "approved"
    assert item["decision"] == {
        "level": "senior",
        "score_bp": 7_500,
        "reason": "Great depth",
        "decided_at": item["decision"]["decided_at"],
    }
    assert "private note" not in response.content.decode()
    assert "scores" not in item
    status = call(client, "get", "/api/vetting/status", user=owner).json()
    assert status["level"] == "senior"
    assert len(status["category_scores"]) == 6


@pytest.mark.parametrize("role", ["client", "staff"])
def test_only_engineers_apply(client, world, role):
    response = call(client, "post", "/api/vetting/applications", {"statement": STATEMENT}, world[role])

    assert response.status_code == 403
    assert response.json()["code"] == "not_an_engineer"
    assert not Application.objects.exists()


def test_anonymous_cannot_apply_or_read(client, world):
    assert call(client, "post", "/api/vetting/applications", {"statement": STATEMENT}).status_code == 401
    assert call(client, "get", "/api/vetting/applications/mine").status_code == 401
    assert call(client, "get", "/api/vetting/status").status_code == 401
    assert not Application.objects.exists()


def test_my_applications_lists_only_mine(client, world):
    submit(world["owner"])
    submit(world["other_engineer"])

    items = call(client, "get", "/api/vetting/applications/mine", user=world["owner"]).json()["items"]

    assert len(items) == 1
    assert Application.objects.get(pk=items[0]["id"]).engineer_id == world["owner"].pk


@pytest.mark.parametrize("role", ["other_engineer", "client", "staff"])
def test_only_the_owner_withdraws(client, world, role):
    application = submit(world["owner"])

    response = call(client, "post", f"/api/vetting/applications/{application.pk}/withdraw", user=world[role])

    assert response.status_code == 404
    application.refresh_from_db()
    assert application.status == S.SUBMITTED


def test_the_owner_withdraws(client, world):
    application = submit(world["owner"])

    response = call(client, "post", f"/api/vetting/applications/{application.pk}/withdraw", user=world["owner"])

    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"


def test_status_is_204_when_not_vetted(client, world):
    response = call(client, "get", "/api/vetting/status", user=world["owner"])

    assert response.status_code == 204


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_engineer_card_is_shown_to_the_engineer_and_staff(client, world, role):
    in_status(world["owner"], world["staff"], S.APPROVED)

    response = call(client, "get", f"/api/vetting/engineers/{world['owner'].pk}/card", user=world[role])

    assert response.status_code == 200
    card = response.json()
    assert (card["level"], card["skills"]) == ("senior", ["asyncio", "django", "python"])
    assert card["category_scores"][0] == {"key": "core-concepts", "name": "Core async concepts", "score_bp": 7_500}


@pytest.mark.parametrize("role", ["other_engineer", "client"])
def test_engineer_card_is_hidden_from_everyone_else(client, world, role):
    in_status(world["owner"], world["staff"], S.APPROVED)

    response = call(client, "get", f"/api/vetting/engineers/{world['owner'].pk}/card", user=world[role])

    assert response.status_code == 404
    assert response.json()["code"] == "engineer_not_found"


def test_engineer_card_is_refused_to_anonymous(client, world):
    in_status(world["owner"], world["staff"], S.APPROVED)

    assert call(client, "get", f"/api/vetting/engineers/{world['owner'].pk}/card").status_code == 401


def test_staff_add_a_rubric_for_another_specialty(client, world):
    spec = load_spec()
    spec["specialty"] = "data-engineering"
    spec["title"] = "Data engineer"

    response = call(client, "post", "/api/vetting/staff/rubrics", spec, world["staff"])

    assert response.status_code == 201
    assert (response.json()["specialty"], response.json()["version"]) == ("data-engineering", 1)


def test_a_rubric_without_the_must_have_category_is_refused_and_nothing_is_stored(client, world):
    spec = load_spec()
    spec["specialty"] = "data-engineering"
    spec["categories"] = [c for c in spec["categories"] if c["key"] != "must-have-skills"]

    response = call(client, "post", "/api/vetting/staff/rubrics", spec, world["staff"])

    assert response.status_code == 422
    assert "must-have-skills" in response.json()["detail"]
    assert not Rubric.objects.filter(specialty="data-engineering").exists()


def test_staff_queue_pins_its_query_count(client, world, django_assert_num_queries):
    for engineer in EngineerFactory.create_batch(3):
        submit(engineer)
    client.force_login(world["staff"])

    # session, user, page (engineer, interviewer and rubric joined)
    with django_assert_num_queries(3):
        response = client.get("/api/vetting/staff/queue")

    assert len(response.json()["items"]) == 3


def test_staff_read_a_rubric_with_its_anchors(client, world, rubric):
    response = call(client, "get", f"/api/vetting/staff/rubrics/{rubric.pk}", user=world["staff"])

    assert response.status_code == 200
    criterion = response.json()["categories"][0]["criteria"][0]
    assert criterion["levels"][0].startswith("0")
