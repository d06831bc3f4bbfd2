"""Every list pages the same way: a keyset cursor, a bounded limit, a Link header, nothing seen twice."""

import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from ninja.errors import ValidationError

from accounts import services as accounts_services
from accounts.models import User
from conversations import services as conversations_services
from hiring_requests import services as requests_services
from hiring_requests.models import HiringRequest, Invitation, InvitationStatus
from marketplace.models import Notification
from marketplace.notifications.log import notify_user
from marketplace.pagination import _signer, decode_cursor, ordering_of
from reviews.services import review_round_open
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ConversationFactory,
    EngagementFactory,
    EngineerFactory,
    HiringRequestFactory,
    HourlyEngagementFactory,
    InvitationFactory,
    MilestoneFactory,
    StaffFactory,
    TimesheetFactory,
    vetted_engineer,
)
from tests.hiring_requests.conftest import raised, request_fields
from tests.vetting.conftest import submit
from vetting.models import Criterion, Rubric, RubricCategory
from vetting.rubric_spec import build_rubric, load_spec

pytestmark = pytest.mark.django_db


@dataclass
class Listing:
    """One list endpoint: who reads it, its URL, how to add one item (returns the item's key), and the key field."""

    viewer: User
    url: str
    add: Callable[[], Any]
    key: str = "id"
    # Newest-first lists put items added mid-walk ahead of the cursor, where this walk never goes.
    newest_first: bool = True


def _request_with_client() -> tuple[User, HiringRequest]:
    client = ClientFactory.create()
    return client, HiringRequestFactory.create(client=client)


def _invitation(request: HiringRequest, engineer: User, **fields: Any) -> Invitation:
    return InvitationFactory.create(request=request, engineer=engineer, **fields)


def _tokens() -> Listing:
    user = ClientFactory.create()
    return Listing(user, "/api/auth/tokens", lambda: accounts_services.api_token_create(user=user, name="t")[0].pk)


def _requests() -> Listing:
    user = ClientFactory.create()
    return Listing(
        user,
        "/api/requests",
        lambda: requests_services.request_create(client=user, fields=request_fields()).pk,
    )


def _applications() -> Listing:
    engineer = EngineerFactory.create()
    submit(engineer)

    def add() -> int:
        return ApplicationFactory.create(engineer=engineer, status="withdrawn").pk

    return Listing(engineer, "/api/vetting/applications/mine", add)


def _queue() -> Listing:
    return Listing(
        StaffFactory.create(),
        "/api/vetting/staff/queue",
        lambda: submit(EngineerFactory.create()).pk,
        newest_first=False,
    )


def _rubrics() -> Listing:
    versions = itertools.count(100)
    return Listing(
        StaffFactory.create(),
        "/api/vetting/staff/rubrics",
        lambda: (
            build_rubric(
                load_spec(),
                version=next(versions),
                created_by_id=None,
                rubric_model=Rubric,
                category_model=RubricCategory,
                criterion_model=Criterion,
            ).pk
        ),
    )


def _invitations() -> Listing:
    engineer = EngineerFactory.create()
    return Listing(engineer, "/api/requests/invitations", lambda: _invitation(_request_with_client()[1], engineer).pk)


def _matches() -> Listing:
    client, request = _request_with_client()
    return Listing(
        client,
        f"/api/requests/{request.pk}/matches",
        lambda: _invitation(request, EngineerFactory.create()).pk,
        key="invitation_id",
        newest_first=False,
    )


def _shortlist() -> Listing:
    client, request = _request_with_client()

    def add() -> int:
        accepted = {"status": InvitationStatus.ACCEPTED, "responded_at": timezone.now()}
        return _invitation(request, vetted_engineer(), **accepted).pk

    return Listing(client, f"/api/requests/{request.pk}/shortlist", add, key="invitation_id", newest_first=False)


def _conversations() -> Listing:
    client, request = _request_with_client()

    def add() -> int:
        return ConversationFactory.create(request=request, client=client).pk

    return Listing(client, "/api/conversations", add)


def _messages() -> Listing:
    client, request = _request_with_client()
    conversation = ConversationFactory.create(request=request, client=client)

    def add() -> int:
        message, _ = conversations_services.message_send(
            sender=client, conversation_id=conversation.pk, body="hi", client_msg_id=None
        )
        return message.pk

    return Listing(client, f"/api/conversations/{conversation.pk}/messages", add, newest_first=False)


def _milestones() -> Listing:
    engagement = EngagementFactory.create()

    def add() -> int:
        return MilestoneFactory.create(engagement=engagement).pk

    return Listing(engagement.client, f"/api/payments/engagements/{engagement.pk}/milestones", add, newest_first=False)


def _engagements() -> Listing:
    client = ClientFactory.create()

    def add() -> int:
        return EngagementFactory.create(client=client).pk

    return Listing(client, "/api/payments/engagements", add)


def _timesheets() -> Listing:
    engagement = HourlyEngagementFactory.create()
    weeks = itertools.count()

    def add() -> int:
        # Each week added is a later one: newest first, it lands ahead of the cursor.
        week_start = date(2026, 1, 5) + timedelta(days=7 * next(weeks))
        return TimesheetFactory.create(engagement=engagement, week_start=week_start).pk

    return Listing(engagement.client, f"/api/payments/engagements/{engagement.pk}/timesheets", add)


def _notifications() -> Listing:
    user = EngineerFactory.create()

    def add() -> int | None:
        # Numbered on commit: run the callbacks the test's wrapping transaction would hold back.
        with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
            notify_user(user_id=user.pk, event="test.event", payload={})
        return Notification.objects.filter(user=user).latest("pk").seq

    return Listing(user, "/api/notifications", add, key="seq", newest_first=False)


def _review_rounds() -> Listing:
    engagement = HourlyEngagementFactory.create()
    steps = itertools.count()

    def add() -> int:
        return review_round_open(engagement=engagement, step=f"timesheet-{next(steps)}").pk

    return Listing(engagement.client, f"/api/reviews/engagements/{engagement.pk}", add, newest_first=False)


LISTINGS = {
    "tokens": _tokens,
    "requests": _requests,
    "applications": _applications,
    "queue": _queue,
    "rubrics": _rubrics,
    "invitations": _invitations,
    "matches": _matches,
    "shortlist": _shortlist,
    "conversations": _conversations,
    "messages": _messages,
    "engagements": _engagements,
    "milestones": _milestones,
    "timesheets": _timesheets,
    "notifications": _notifications,
    "review_rounds": _review_rounds,
}


# Queries to read a page, whatever its length: the session and the user, then per list what it
# checks first (the request, conversation or engagement it belongs to) and its page, with what the
# page prefetches.
QUERIES = {
    "tokens": 3,
    "requests": 3,
    "applications": 3,
    "queue": 3,
    "rubrics": 3,
    "invitations": 3,  # the client's reputation is annotated
    "matches": 4,  # the request
    "shortlist": 6,  # the request; the page; which engineers the client shortlisted, and their records
    "conversations": 3,  # unread counts and the last message are annotated
    "messages": 4,  # the conversation
    "engagements": 4,  # the page; its milestones
    "milestones": 4,  # the engagement
    "timesheets": 4,  # the engagement
    "notifications": 3,
    "review_rounds": 5,  # the engagement; the page; its reviews
}


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_a_list_reads_in_as_many_queries_for_six_rows_as_for_two(client, rubric, django_assert_num_queries, name):
    listing = LISTINGS[name]()
    for _ in range(2):
        listing.add()
    client.force_login(listing.viewer)
    with CaptureQueriesContext(connection) as two_rows:
        small = client.get(listing.url)
    for _ in range(4):
        listing.add()

    with django_assert_num_queries(QUERIES[name]):
        large = client.get(listing.url)

    assert len(two_rows.captured_queries) == QUERIES[name]
    assert len(large.json()["items"]) == len(small.json()["items"]) + 4


def _walk(client: Client, listing: Listing, *, during: Callable[[int], None]) -> tuple[list[Any], list[str]]:
    """Every key on every page, with each page's Link header; `during(page)` runs after each page is read."""
    seen: list[Any] = []
    links: list[str] = []
    url = f"{listing.url}?limit=2"
    for page in range(100):
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"items", "next_cursor", "has_more"}
        seen += [item[listing.key] for item in body["items"]]
        links.append(response.headers.get("Link", ""))
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return seen, links
        during(page)
        # The Link header is the whole next URL: following it is enough.
        url = response.headers["Link"].split(">")[0].lstrip("<")
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_a_cursor_walk_sees_every_item_exactly_once_while_new_ones_arrive(client, rubric, name):
    listing = LISTINGS[name]()
    existing = [listing.add() for _ in range(5)]
    added: list[Any] = []
    client.force_login(listing.viewer)

    seen, links = _walk(client, listing, during=lambda page: added.append(listing.add()) if page < 2 else None)

    assert len(seen) == len(set(seen)), f"an item was seen twice: {seen}"
    assert set(existing) <= set(seen)
    if listing.newest_first:
        assert not set(added) & set(seen)  # added ahead of the cursor
    else:
        assert set(added) <= set(seen)  # added behind the cursor: this walk reaches them
    assert all('rel="next"' in link for link in links[:-1])
    assert links[-1] == ""


@pytest.mark.parametrize("name", ["requests", "messages"])
def test_a_cursor_from_another_list_or_tampered_with_is_a_422(client, rubric, name):
    listing = LISTINGS[name]()
    for _ in range(3):
        listing.add()
    client.force_login(listing.viewer)
    other = "requests" if name == "messages" else "messages"
    foreign_listing = LISTINGS[other]()
    for _ in range(3):
        foreign_listing.add()
    client.force_login(foreign_listing.viewer)
    foreign = client.get(f"{foreign_listing.url}?limit=1").json()["next_cursor"]
    client.force_login(listing.viewer)
    good = client.get(f"{listing.url}?limit=1").json()["next_cursor"]
    payload, signature = good.rsplit(":", 1)
    key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def forged(values: list[Any]) -> str:
        raw = json.dumps({"o": key["o"], "v": values}).encode()
        return f"{base64.urlsafe_b64encode(raw).decode().rstrip('=')}:{signature}"

    # The same ordering (-created_at, -id) on another list: still not this list's cursor.
    twin = _tokens()
    for _ in range(2):
        twin.add()
    client.force_login(twin.viewer)
    twin_cursor = client.get(f"{twin.url}?limit=1").json()["next_cursor"]
    client.force_login(listing.viewer)

    bad = [
        foreign,
        twin_cursor,
        payload,  # unsigned
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        "Mb",  # base64 of the JSON number 1
        "WzFd",  # [1]
        "0",
        "not-a-cursor",
        "x" * 2_000,
        "%00",
        forged(["yesterday", 1] if name == "requests" else ["a", 1]),
        forged([None, 1]),
        forged([1]),
        forged([2**70, 2**70]),
    ]
    for cursor in bad:
        response = client.get(f"{listing.url}?cursor={cursor}")
        assert response.status_code == 422, (cursor, response.content)
        body = response.json()
        assert body["code"] == "validation_error"
        assert [error["field"] for error in body["errors"]] == ["cursor"]
    assert client.get(f"{listing.url}?limit=1&cursor={good}").status_code == 200


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", 1.5, True, None, 2**70, ["x"]])
def test_a_signed_cursor_holding_a_value_no_key_could_have_is_a_422_not_a_500(value):
    """Behind the signature, in case a secret ever leaks: text PostgreSQL cannot hold, wrong types."""
    queryset = Rubric.objects.order_by("specialty", "-version", "id")
    ordering = ordering_of(queryset)
    raw = json.dumps({"o": ["specialty", "-version", "id"], "v": [value, 1, 1]}).encode()
    cursor = _signer("/x").sign(base64.urlsafe_b64encode(raw).decode().rstrip("="))

    with pytest.raises(ValidationError) as refused:
        decode_cursor(cursor, ordering, queryset, list_path="/x")

    assert refused.value.errors[0]["loc"] == ("query", "cursor")


@pytest.mark.parametrize("path", ["/api/requests", "/api/notifications", "/api/me", "/api/vetting/staff/queue"])
def test_an_unknown_query_parameter_is_refused_by_name(client, path):
    client.force_login(StaffFactory.create())

    response = client.get(f"{path}?stauts=open&ordr=x")

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]] == ["ordr", "stauts"]


def test_an_unknown_query_parameter_on_a_write_changes_nothing(client):
    user = ClientFactory.create()
    client.force_login(user)

    response = client.post(
        "/api/requests?dry_run=1", json.dumps(request_fields(start_date="2099-01-01")), content_type="application/json"
    )

    assert response.status_code == 422
    assert not HiringRequest.objects.filter(client=user).exists()


def test_every_list_in_the_document_pages_by_cursor(client):
    document = client.get("/api/openapi.json").json()
    schemas = document["components"]["schemas"]
    lists = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        ok = get["responses"]["200"]["content"]["application/json"]["schema"] if "200" in get["responses"] else {}
        if "$ref" in ok:
            ok = schemas[ok["$ref"].rsplit("/", 1)[1]]
        assert ok.get("type") != "array", f"{path} answers a bare array"
        if "items" in ok.get("properties", {}):
            lists.append(path)
            assert set(ok["properties"]) == {"items", "next_cursor", "has_more"}, path
            assert {"cursor", "limit"} <= {p["name"] for p in get.get("parameters", [])}, path
    assert len(lists) == len(LISTINGS)


def test_limit_is_bounded(client):
    client.force_login(ClientFactory.create())

    statuses = [client.get(f"/api/requests?limit={limit}").status_code for limit in (0, 101, -1, "x", 2**64)]

    assert statuses == [422] * 5


def test_raised_requests_page_newest_first(client):
    user = ClientFactory.create()
    first, second = raised(user), raised(user)
    client.force_login(user)

    page = client.get("/api/requests?limit=1").json()
    rest = client.get(f"/api/requests?limit=1&cursor={page['next_cursor']}").json()

    assert [page["items"][0]["id"], rest["items"][0]["id"]] == [second.pk, first.pk]
    assert rest["has_more"] is False
