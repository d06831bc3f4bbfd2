"""Requests over HTTP: every lookup scoped to the client or engineer asking."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hiring_requests import services
from hiring_requests.models import HiringRequest, Invitation, InvitationStatus, RequestStatus
from tests.factories import (
    ClientFactory,
    EngineerFactory,
    HiringRequestFactory,
    InvitationFactory,
    vetted_engineer,
)
from tests.hiring_requests.conftest import enable_payouts, raised, request_fields

pytestmark = pytest.mark.django_db


def send(client, method, path, body=None, user=None):
    client.force_login(user)
    kwargs = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = json.dumps(body, default=str)
    return getattr(client, method)(path, **kwargs)


def test_a_client_drafts_raises_and_sees_the_clock(client, client_user):
    created = send(client, "post", "/api/requests", request_fields(required_skills=["Python", " AsyncIO"]), client_user)
    request_id = created.json()["id"]

    raised_response = send(client, "post", f"/api/requests/{request_id}/raise", user=client_user)

    assert created.status_code == 201
    assert created.json()["required_skills"] == ["asyncio", "python"]
    assert created.json()["clock"]["deadline"] is None
    body = raised_response.json()
    assert body["status"] == "open"
    assert 8 * 3600 - 5 <= body["clock"]["seconds_left"] <= 8 * 3600
    assert "left of the 8-hour promise" in body["clock"]["summary"]


def test_validation_errors_are_clear_and_store_nothing(client, client_user):
    response = send(client, "post", "/api/requests", request_fields(time_zone="Nowhere/Land"), client_user)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("time_zone: Value error, not an IANA time zone name")
    assert not HiringRequest.objects.exists()


def test_status_is_not_writable(client, client_user):
    response = send(client, "post", "/api/requests", {**request_fields(), "status": "hired"}, client_user)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert not HiringRequest.objects.exists()


def test_an_engineer_cannot_raise_requests(client, rubric):
    response = send(client, "post", "/api/requests", request_fields(), EngineerFactory.create())

    assert response.status_code == 403
    assert response.json()["code"] == "not_a_client"
    assert not HiringRequest.objects.exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"title": "Mine now"}),
        ("post", "/raise", None),
        ("post", "/cancel", None),
        ("post", "/close", None),
        ("get", "/matches", None),
        ("get", "/shortlist", None),
        ("post", "/hire", {"engineer_id": 1}),
    ],
)
def test_another_client_gets_404_and_changes_nothing(client, rubric, client_user, method, suffix, body):
    engineer = vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get().pk)
    enable_payouts(engineer)
    before = HiringRequest.objects.values().get(pk=request.pk)

    response = send(client, method, f"/api/requests/{request.pk}{suffix}", body, ClientFactory.create())

    assert response.status_code == 404
    assert response.json()["code"] == "request_not_found"
    assert HiringRequest.objects.values().get(pk=request.pk) == before


def test_my_requests_lists_only_mine(client, client_user):
    raised(client_user)
    raised(ClientFactory.create())

    items = send(client, "get", "/api/requests", user=client_user).json()["items"]

    assert [HiringRequest.objects.get(pk=i["id"]).client_id for i in items] == [client_user.pk]


def test_an_engineer_sees_only_their_own_invitations_and_answers_them(client, rubric, client_user):
    mine, theirs = vetted_engineer(score_bp=9_000), vetted_engineer(score_bp=8_000)
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    their_invitation = Invitation.objects.get(engineer=theirs)

    listed = send(client, "get", "/api/requests/invitations", user=mine).json()["items"]
    stolen = send(client, "post", f"/api/requests/invitations/{their_invitation.pk}/accept", user=mine)
    accepted = send(client, "post", f"/api/requests/invitations/{listed[0]['id']}/accept", user=mine)

    assert [i["request"]["title"] for i in listed] == ["Async payments service"]
    assert Invitation.objects.get(pk=listed[0]["id"]).engineer_id == mine.pk
    assert stolen.status_code == 404
    their_invitation.refresh_from_db()
    assert their_invitation.status == InvitationStatus.PENDING
    assert accepted.json()["status"] == "accepted"


def test_matches_hide_who_until_they_accept_and_shortlist_shows_card_and_why(client, rubric, client_user):
    accepted, pending = vetted_engineer(score_bp=9_000), vetted_engineer(score_bp=8_000)
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    services.invitation_accept(engineer=accepted, invitation_id=Invitation.objects.get(engineer=accepted).pk)

    matches = send(client, "get", f"/api/requests/{request.pk}/matches", user=client_user).json()["items"]
    shortlist = send(client, "get", f"/api/requests/{request.pk}/shortlist", user=client_user).json()["items"]
    card = send(client, "get", f"/api/vetting/engineers/{accepted.pk}/card", user=client_user)
    hidden = send(client, "get", f"/api/vetting/engineers/{pending.pk}/card", user=client_user)

    assert [(m["engineer_id"], m["status"]) for m in matches] == [(accepted.pk, "accepted"), (None, "pending")]
    assert set(matches[0]["breakdown"]) == {
        "weights",
        "skills",
        "vetting",
        "time_zone",
        "rate",
        "load",
        "responsiveness",
        "reputation",
    }
    assert matches[0]["breakdown"]["reputation"] == {"score_bp": 7_500}  # unreviewed: the prior, 4 stars
    assert [entry["card"]["engineer_id"] for entry in shortlist] == [accepted.pk]
    assert shortlist[0]["card"]["level"] == "senior"
    assert card.status_code == 200
    assert hidden.status_code == 404


def test_hire_through_the_api(client, rubric, client_user):
    engineer = vetted_engineer()
    enable_payouts(engineer)
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get().pk)

    response = send(client, "post", f"/api/requests/{request.pk}/hire", {"engineer_id": engineer.pk}, client_user)

    assert response.status_code == 201
    assert (response.json()["engineer_id"], response.json()["rate_minor"]) == (engineer.pk, 8_000)
    request.refresh_from_db()
    assert request.status == RequestStatus.HIRED


def test_my_requests_pins_its_query_count(client, client_user, django_assert_num_queries):
    for _ in range(3):
        raised(client_user)
    client.force_login(client_user)

    # session, user, page
    with django_assert_num_queries(3):
        response = client.get("/api/requests")

    assert len(response.json()["items"]) == 3


def _shortlisted(request: HiringRequest) -> Invitation:
    return InvitationFactory.create(
        request=request, engineer=vetted_engineer(), status=InvitationStatus.ACCEPTED, responded_at=timezone.now()
    )


def test_the_shortlist_reads_every_card_at_once(client, rubric, client_user, django_assert_num_queries):
    one, five = HiringRequestFactory.create(client=client_user), HiringRequestFactory.create(client=client_user)
    _shortlisted(one)
    for _ in range(5):
        _shortlisted(five)
    client.force_login(client_user)

    with CaptureQueriesContext(connection) as for_one:
        small = client.get(f"/api/requests/{one.pk}/shortlist")
    # session, user, the request, the page, which engineers the client shortlisted, their vetted records
    with django_assert_num_queries(6):
        large = client.get(f"/api/requests/{five.pk}/shortlist")

    assert len(for_one.captured_queries) == 6
    assert [len(small.json()["items"]), len(large.json()["items"])] == [1, 5]
    assert all(entry["card"] is not None for entry in large.json()["items"])


def test_a_shortlist_card_is_the_card_the_client_sees_on_its_own(client, rubric, client_user):
    invitation = _shortlisted(HiringRequestFactory.create(client=client_user))
    client.force_login(client_user)

    entry = client.get(f"/api/requests/{invitation.request_id}/shortlist").json()["items"][0]
    card = client.get(f"/api/vetting/engineers/{invitation.engineer_id}/card").json()

    assert entry["card"] == card
    assert card["engineer_id"] == invitation.engineer_id
