"""My engagements, with their milestones: the client's and the engineer's own, nobody else's."""

from datetime import datetime, timedelta

import pytest

from hiring_requests.models import Engagement
from payments.models import Milestone
from tests.factories import ClientFactory, EngineerFactory, StaffFactory, vetted_engineer
from tests.payments.helpers import engagement, hourly_engagement, milestone

pytestmark = pytest.mark.django_db

LIST = "/api/payments/engagements"


def _ids(response) -> list[int]:
    return [item["id"] for item in response.json()["items"]]


def _snapshot() -> list[tuple[object, ...]]:
    return list(Engagement.objects.order_by("pk").values_list()) + list(Milestone.objects.order_by("pk").values_list())


def test_the_client_sees_their_engagements_newest_first_with_milestones(client, rubric):
    buyer = ClientFactory.create()
    older = engagement(onboarded=False, client=buyer)
    newer = engagement(onboarded=False, client=buyer)
    first, second = milestone(older, 30_000), milestone(older, 20_000)
    engagement(onboarded=False)  # someone else's
    client.force_login(buyer)

    response = client.get(LIST)

    assert response.status_code == 200, response.json()
    assert _ids(response) == [newer.pk, older.pk]
    item = response.json()["items"][1]
    # Times are given to the millisecond.
    assert abs(datetime.fromisoformat(item.pop("created_at")) - older.created_at) < timedelta(milliseconds=1)
    assert item == {
        "id": older.pk,
        "request_id": older.request_id,
        "request_title": older.request.title,
        "my_role": "client",
        "counterpart_id": older.engineer_id,
        "counterpart_name": older.engineer.full_name,
        "rate_kind": "fixed",
        "rate_minor": 100_000,
        "currency": "usd",
        "hours_per_week": 20,
        "status": "active",
        "billing_status": None,
        "milestones": [
            {
                "id": first.pk,
                "title": first.title,
                "amount_minor": 30_000,
                "currency": "usd",
                "status": "draft",
                "due_date": first.due_date.isoformat(),
            },
            {
                "id": second.pk,
                "title": second.title,
                "amount_minor": 20_000,
                "currency": "usd",
                "status": "draft",
                "due_date": second.due_date.isoformat(),
            },
        ],
    }
    assert response.json()["items"][0]["milestones"] == []


def test_the_engineer_sees_their_engagements_with_the_client_as_counterpart(client, rubric):
    engineer = vetted_engineer()
    mine = engagement(onboarded=False, engineer=engineer)
    engagement(onboarded=False)  # another engineer's
    client.force_login(engineer)

    response = client.get(LIST)

    assert _ids(response) == [mine.pk]
    item = response.json()["items"][0]
    assert (item["my_role"], item["counterpart_id"], item["counterpart_name"]) == (
        "engineer",
        mine.client_id,
        mine.client.full_name,
    )


def test_a_counterpart_without_a_name_is_shown_by_their_part(client, rubric):
    made = engagement(onboarded=False, client=ClientFactory.create(full_name=""))
    client.force_login(made.engineer)

    response = client.get(LIST)

    assert response.json()["items"][0]["counterpart_name"] == "Client"


def test_an_hourly_engagement_carries_its_billing_status(client, rubric):
    made = hourly_engagement(onboarded=False)
    client.force_login(made.client)

    response = client.get(LIST)

    assert response.json()["items"][0]["rate_kind"] == "hourly"
    assert response.json()["items"][0]["billing_status"] == "awaiting_payment_method"


def test_a_stranger_sees_none_and_gets_404_on_the_detail_and_nothing_changes(client, rubric):
    made = engagement(onboarded=False)
    milestone(made)
    before = _snapshot()
    client.force_login(EngineerFactory.create())

    listed = client.get(LIST)
    detail = client.get(f"{LIST}/{made.pk}")

    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None, "has_more": False}
    assert detail.status_code == 404
    assert detail.json()["code"] == "engagement_not_found"
    assert _snapshot() == before


def test_an_engagement_that_does_not_exist_is_the_same_404(client, rubric):
    client.force_login(ClientFactory.create())

    response = client.get(f"{LIST}/999999")

    assert response.status_code == 404
    assert response.json()["code"] == "engagement_not_found"


def test_the_detail_has_the_list_items_shape_for_client_and_engineer(client, rubric):
    made = engagement(onboarded=False)
    milestone(made)
    client.force_login(made.client)
    as_client = client.get(f"{LIST}/{made.pk}")
    listed = client.get(LIST).json()["items"][0]
    client.force_login(made.engineer)

    as_engineer = client.get(f"{LIST}/{made.pk}")

    assert as_client.status_code == 200
    assert as_client.json() == listed
    assert as_engineer.status_code == 200
    assert as_engineer.json()["my_role"] == "engineer"
    assert as_engineer.json()["milestones"] == listed["milestones"]


def test_staff_list_only_their_own_but_read_any_engagement_like_its_other_reads(client, rubric):
    made = engagement(onboarded=False)
    client.force_login(StaffFactory.create())

    listed = client.get(LIST)
    detail = client.get(f"{LIST}/{made.pk}")

    assert listed.json()["items"] == []
    assert detail.status_code == 200
    assert (detail.json()["my_role"], detail.json()["counterpart_id"]) == ("staff", made.client_id)


def test_status_filters_and_an_unknown_status_is_refused(client, rubric):
    buyer = ClientFactory.create()
    active = engagement(onboarded=False, client=buyer)
    ended = engagement(onboarded=False, client=buyer)
    Engagement.objects.filter(pk=ended.pk).update(status="ended")
    client.force_login(buyer)

    only_ended = client.get(LIST, {"status": "ended"})
    only_active = client.get(LIST, {"status": "active"})
    refused = client.get(LIST, {"status": "paused"})

    assert _ids(only_ended) == [ended.pk]
    assert _ids(only_active) == [active.pk]
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["status"]


def test_the_list_pages_by_cursor_newest_first(client, rubric):
    buyer = ClientFactory.create()
    made = [engagement(onboarded=False, client=buyer) for _ in range(3)]
    client.force_login(buyer)

    first = client.get(LIST, {"limit": 2})
    rest = client.get(LIST, {"limit": 2, "cursor": first.json()["next_cursor"]})

    assert _ids(first) == [made[2].pk, made[1].pk]
    assert first.json()["has_more"] is True
    assert 'rel="next"' in first.headers["Link"]
    assert _ids(rest) == [made[0].pk]
    assert rest.json()["has_more"] is False


def test_the_list_pins_its_query_count_however_many_engagements_and_milestones(
    client, rubric, django_assert_max_num_queries
):
    buyer = ClientFactory.create()
    for _ in range(4):
        made = engagement(onboarded=False, client=buyer)
        milestone(made)
        milestone(made)
    hourly = hourly_engagement(onboarded=False)
    Engagement.objects.filter(pk=hourly.pk).update(client=buyer)
    client.force_login(buyer)

    # session, user, the page (with requests, billing and names joined), every milestone of the page
    with django_assert_max_num_queries(4):
        response = client.get(LIST)

    assert len(response.json()["items"]) == 5
    assert sum(len(item["milestones"]) for item in response.json()["items"]) == 8
    assert response.json()["items"][0]["billing_status"] == "awaiting_payment_method"
