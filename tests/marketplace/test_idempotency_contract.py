"""Idempotency-Key as part of the API contract: declared, validated, replayed once and marked, forgotten after 24 h."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from hiring_requests import services
from hiring_requests.models import HiringRequest
from marketplace import tasks
from marketplace.idempotency import KEY_PATTERN, idempotency_records_purge
from marketplace.models import IdempotencyRecord
from payments.models import Milestone
from tests.api_calls import post_json
from tests.concurrency import race
from tests.factories import ClientFactory, IdempotencyRecordFactory
from tests.hiring_requests.conftest import request_fields
from tests.payments.helpers import engagement, milestone

pytestmark = pytest.mark.django_db

# Every operation that takes the header: (method, path in the OpenAPI document).
ACCEPTING = [
    ("post", "/api/payments/engagements/{engagement_id}/milestones"),
    ("post", "/api/payments/milestones/{milestone_id}/fund"),
    ("post", "/api/payments/milestones/{milestone_id}/submit"),
    ("post", "/api/payments/milestones/{milestone_id}/request-changes"),
    ("post", "/api/payments/milestones/{milestone_id}/approve"),
    ("post", "/api/payments/milestones/{milestone_id}/refund"),
    ("post", "/api/payments/milestones/{milestone_id}/cancel"),
    ("post", "/api/payments/milestones/{milestone_id}/dispute"),
    ("post", "/api/payments/staff/milestones/{milestone_id}/settle"),
    ("post", "/api/payments/engagements/{engagement_id}/payment-method"),
    ("post", "/api/payments/engagements/{engagement_id}/time-entries"),
    ("post", "/api/payments/timesheets/{timesheet_id}/approve"),
    ("post", "/api/payments/timesheets/{timesheet_id}/pay"),
    ("post", "/api/payments/timesheets/{timesheet_id}/dispute"),
    ("post", "/api/payments/staff/timesheets/{timesheet_id}/settle"),
    ("post", "/api/reviews/rounds/{round_id}"),
    ("post", "/api/requests"),
    ("post", "/api/requests/{request_id}/raise"),
    ("post", "/api/requests/{request_id}/cancel"),
    ("post", "/api/requests/{request_id}/widening"),
    ("post", "/api/requests/{request_id}/close"),
    ("post", "/api/requests/{request_id}/hire"),
    ("post", "/api/requests/invitations/{invitation_id}/accept"),
    ("post", "/api/requests/invitations/{invitation_id}/withdraw"),
    ("post", "/api/requests/invitations/{invitation_id}/decline"),
    ("post", "/api/conversations/{conversation_id}/messages"),
]


def post(client, path, body, key=None):
    return post_json(client, path, body, **({} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}))


DETAIL = "An Idempotency-Key is 1 to 255 printable ASCII characters, without commas or a space at either end."


def milestone_fields(**overrides):
    return {"title": "Async worker pool", "amount_minor": 50_000, "due_date": "2099-01-01", **overrides}


@pytest.fixture
def made(client):
    made = engagement(onboarded=False)
    client.force_login(made.client)
    return made


def test_a_milestone_created_twice_with_one_key_is_created_once_and_the_replay_is_marked(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"

    first = post(client, path, milestone_fields(), key="create-1")
    again = post(client, path, milestone_fields(), key="create-1")

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert Milestone.objects.filter(engagement=made).count() == 1


def test_the_same_body_with_keys_in_another_order_is_the_same_request(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    fields = milestone_fields()
    reordered = dict(reversed(fields.items()))

    first = post(client, path, fields, key="create-1")
    again = post(client, path, reordered, key="create-1")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Milestone.objects.filter(engagement=made).count() == 1


def test_without_a_key_each_post_creates_and_nothing_is_recorded(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"

    post(client, path, milestone_fields())
    second = post(client, path, milestone_fields())

    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert Milestone.objects.filter(engagement=made).count() == 2
    assert IdempotencyRecord.objects.count() == 0


def test_a_request_drafted_twice_with_one_key_is_drafted_once(client):
    owner = ClientFactory.create()
    client.force_login(owner)

    first = post(client, "/api/requests", request_fields(), key="draft-1")
    again = post(client, "/api/requests", request_fields(), key="draft-1")

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert HiringRequest.objects.filter(client=owner).count() == 1


def test_a_key_reused_with_another_body_is_refused_and_changes_nothing(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    post(client, path, milestone_fields(), key="create-1")

    other = post(client, path, milestone_fields(title="Something else"), key="create-1")

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert "Idempotent-Replayed" not in other
    assert list(Milestone.objects.filter(engagement=made).values_list("title", flat=True)) == ["Async worker pool"]


def test_a_key_reused_on_another_path_with_the_same_body_is_refused_and_changes_nothing(client):
    owner = ClientFactory.create()
    first, second = (services.request_create(client=owner, fields=request_fields()) for _ in range(2))
    client.force_login(owner)
    post(client, f"/api/requests/{first.pk}/raise", {}, key="shared")

    response = post(client, f"/api/requests/{second.pk}/raise", {}, key="shared")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert HiringRequest.objects.get(pk=first.pk).status == "open"
    assert HiringRequest.objects.get(pk=second.pk).status == "draft"


def test_a_key_is_scoped_to_its_user(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    post(client, path, milestone_fields(), key="create-1")
    stranger = ClientFactory.create()
    client.force_login(stranger)

    response = post(client, "/api/requests", request_fields(), key="create-1")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert HiringRequest.objects.filter(client=stranger).count() == 1


def test_an_error_stores_nothing_and_the_key_can_be_used_again(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    past = milestone_fields(due_date="2000-01-01")

    refused = post(client, path, past, key="create-1")
    created = post(client, path, milestone_fields(), key="create-1")

    assert refused.status_code == 422
    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created
    assert Milestone.objects.filter(engagement=made).count() == 1


def test_a_key_past_its_window_is_forgotten_and_the_request_runs_afresh(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    first = post(client, path, milestone_fields(), key="create-1")
    window = timedelta(seconds=django_settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyRecord.objects.filter(key="create-1").update(created_at=timezone.now() - window - timedelta(seconds=1))

    again = post(client, path, milestone_fields(title="Next phase"), key="create-1")
    replayed = post(client, path, milestone_fields(title="Next phase"), key="create-1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == again.json()["id"]
    assert Milestone.objects.filter(engagement=made).count() == 2


def test_a_key_inside_its_window_is_still_replayed(client, made):
    path = f"/api/payments/engagements/{made.pk}/milestones"
    post(client, path, milestone_fields(), key="create-1")
    window = timedelta(seconds=django_settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyRecord.objects.filter(key="create-1").update(created_at=timezone.now() - window + timedelta(minutes=1))

    again = post(client, path, milestone_fields(), key="create-1")

    assert again["Idempotent-Replayed"] == "true"
    assert Milestone.objects.filter(engagement=made).count() == 1


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 256, id="256 characters"),
        pytest.param("", id="empty"),
        pytest.param("clé-1", id="not ASCII"),
        pytest.param("tab\there", id="a control character"),
        pytest.param(" padded", id="a space at the start"),
        pytest.param("k1, k2", id="two headers joined by a comma"),
    ],
)
def test_a_bad_key_is_refused_with_422_and_nothing_is_created(client, made, key):
    path = f"/api/payments/engagements/{made.pk}/milestones"

    response = post(client, path, milestone_fields(), key=key)

    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_idempotency_key",
        "detail": DETAIL,
        "errors": [{"field": "Idempotency-Key", "message": DETAIL}],
    }
    assert Milestone.objects.filter(engagement=made).count() == 0
    assert IdempotencyRecord.objects.count() == 0


def test_a_key_of_255_printable_characters_is_kept_whole(client, made):
    key = "a-B_9 ~" + "k" * 248
    path = f"/api/payments/engagements/{made.pk}/milestones"

    response = post(client, path, milestone_fields(), key=key)

    assert response.status_code == 201
    assert IdempotencyRecord.objects.get().key == key


def test_a_bad_key_on_an_async_money_step_is_refused_and_nothing_moves(client, made):
    draft = milestone(made)

    response = post(client, f"/api/payments/milestones/{draft.pk}/fund", {}, key="x" * 256)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert Milestone.objects.get(pk=draft.pk).status == "draft"


def test_the_purge_deletes_records_past_the_window_and_keeps_fresh_ones():
    user = ClientFactory.create()
    window = timedelta(seconds=django_settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyRecordFactory.create(user=user, key="old", created_at=timezone.now() - window - timedelta(minutes=1))
    IdempotencyRecordFactory.create(user=user, key="recent", created_at=timezone.now() - window + timedelta(minutes=1))

    deleted = idempotency_records_purge()

    assert deleted == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]


def test_the_purge_task_runs_the_purge_and_beat_schedules_it():
    user = ClientFactory.create()
    window = timedelta(seconds=django_settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyRecordFactory.create(user=user, key="old", created_at=timezone.now() - window - timedelta(minutes=1))

    assert tasks.idempotency_records_purge() == 1
    assert IdempotencyRecord.objects.count() == 0
    scheduled = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "marketplace.tasks.idempotency_records_purge" in scheduled


def test_the_openapi_document_declares_the_header_on_every_operation_that_takes_it(client):
    paths = client.get("/api/openapi.json").json()["paths"]

    declared = sorted(
        (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if any(parameter["name"] == "Idempotency-Key" for parameter in operation.get("parameters", []))
    )

    assert declared == sorted(ACCEPTING)
    create = paths["/api/payments/engagements/{engagement_id}/milestones"]["post"]
    header = next(parameter for parameter in create["parameters"] if parameter["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    assert header["required"] is False
    assert header["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": KEY_PATTERN,
    }
    assert re.fullmatch(KEY_PATTERN.strip("^$"), "a9f1-4c2e_key.1")
    assert not re.fullmatch(KEY_PATTERN.strip("^$"), "k1, k2")
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]
    assert [p["name"] for p in create["parameters"]].count("engagement_id") == 1


@pytest.mark.django_db(transaction=True)
def test_one_key_sent_concurrently_to_a_sync_operation_creates_once(rubric):
    made = engagement(onboarded=False)
    path = f"/api/payments/engagements/{made.pk}/milestones"

    def send():
        browser = Client()
        browser.force_login(made.client)
        return post(browser, path, milestone_fields(), key="create-1")

    responses: list[Any] = race(*[send] * 5)

    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code == 409]
    assert len(created) + len(refused) == 5
    assert {r.json()["code"] for r in refused} <= {"idempotency_key_in_flight"}
    assert len({r.json()["id"] for r in created}) == 1
    assert Milestone.objects.filter(engagement=made).count() == 1
