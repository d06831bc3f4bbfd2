"""Preferences over the API, and one-click unsubscribe (RFC 8058) without a login."""

import json
import re

import pytest
from django.core import mail
from django.test import Client

from marketplace.models import EmailOutbox, EmailPreference
from marketplace.notifications import email, notify_user, outbox
from tests.factories import ClientFactory, EmailPreferenceFactory, EngineerFactory, StaffFactory
from tests.notifications.conftest import PAYLOAD

pytestmark = pytest.mark.django_db

PATH = "/api/notifications/email-preferences"


def put(client, body):
    return client.put(PATH, json.dumps(body), content_type="application/json")


def chosen(user) -> dict[str, str]:
    return dict(EmailPreference.objects.filter(user=user).values_list("kind", "delivery"))


def test_a_user_lists_only_the_kinds_meant_for_them_all_immediate_at_first(client):
    engineer = EngineerFactory.create()
    client.force_login(engineer)

    listed = {row["kind"]: row for row in client.get(PATH).json()["preferences"]}

    assert "invitation.created" in listed
    assert "shortlist.changed" not in listed
    assert "milestone.disputed" not in listed
    assert {row["delivery"] for row in listed.values()} == {"immediately"}
    assert listed["api_token.created"]["can_turn_off"] is False
    assert listed["timesheet.changed"] | {"can_turn_off": True, "partly_essential": True} == listed["timesheet.changed"]


def test_staff_see_the_staff_alerts(client):
    client.force_login(StaffFactory.create())

    kinds = {row["kind"] for row in client.get(PATH).json()["preferences"]}

    assert {"milestone.disputed", "request.at_risk", "api_token.created"} <= kinds
    assert "invitation.created" not in kinds


def test_a_user_chooses_per_kind_and_other_kinds_keep_theirs(client):
    user = ClientFactory.create()
    client.force_login(user)

    first = put(client, {"preferences": {"shortlist.changed": "daily", "message.created": "never"}})
    second = put(client, {"preferences": {"shortlist.changed": "immediately"}})

    assert first.status_code == second.status_code == 200
    rows = {row["kind"]: row["delivery"] for row in second.json()["preferences"]}
    assert (rows["shortlist.changed"], rows["message.created"]) == ("immediately", "never")
    assert chosen(user) == {"shortlist.changed": "immediately", "message.created": "never"}


def test_an_essential_kind_cannot_be_turned_off_and_nothing_changes(client):
    user = ClientFactory.create()
    client.force_login(user)

    response = put(client, {"preferences": {"shortlist.changed": "never", "api_token.created": "never"}})

    assert response.status_code == 422
    assert response.json()["code"] == "notification_essential"
    assert chosen(user) == {}


def test_a_kind_not_meant_for_the_user_is_refused(client):
    user = ClientFactory.create()
    client.force_login(user)

    unknown = put(client, {"preferences": {"no.such.kind": "never"}})
    not_mine = put(client, {"preferences": {"invitation.created": "never"}})
    bad_value = put(client, {"preferences": {"shortlist.changed": "weekly"}})
    extra = put(client, {"preferences": {}, "user_id": 1})

    assert [r.status_code for r in (unknown, not_mine, bad_value, extra)] == [422, 422, 422, 422]
    assert [unknown.json()["code"], not_mine.json()["code"]] == ["notification_kind_unknown"] * 2
    assert bad_value.json()["code"] == extra.json()["code"] == "validation_error"
    assert chosen(user) == {}


def test_preferences_need_a_login(client):
    assert client.get(PATH).status_code == 401
    assert put(client, {"preferences": {}}).status_code == 401


def test_a_session_write_needs_the_csrf_token(csrf_client):
    user = ClientFactory.create()
    csrf_client.force_login(user)

    response = put(csrf_client, {"preferences": {"shortlist.changed": "never"}})

    assert response.status_code == 403
    assert chosen(user) == {}


# --- one-click unsubscribe ----------------------------------------------------------------------


def emailed_link(user, kind="shortlist.changed") -> str:
    row = EmailOutbox.objects.get(notification=notify_user(user_id=user.pk, event=kind, payload=PAYLOAD))
    outbox.email_send(outbox_id=row.pk)
    header = mail.outbox[-1].extra_headers["List-Unsubscribe"]
    match = re.fullmatch(r"<http://127\.0\.0\.1:8000(/email/unsubscribe/[^>]+)>", header)
    assert match is not None
    assert match.group(1) in mail.outbox[-1].body
    return match.group(1)


def test_one_click_unsubscribe_works_without_a_login_or_csrf_token():
    user = ClientFactory.create()
    link = emailed_link(user)
    browserless = Client(enforce_csrf_checks=True)

    response = browserless.post(link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert chosen(user) == {"shortlist.changed": "never"}
    assert browserless.post(link).status_code == 200  # a second click changes nothing more
    assert chosen(user) == {"shortlist.changed": "never"}


def test_opening_the_link_only_asks_for_confirmation():
    user = ClientFactory.create()
    link = emailed_link(user)

    response = Client().get(link)

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert chosen(user) == {}


@pytest.mark.parametrize("tamper", ["flip_signature", "other_user", "other_kind", "garbage"])
def test_a_tampered_link_is_refused_and_changes_nothing(tamper):
    user, other = ClientFactory.create(), ClientFactory.create()
    link = emailed_link(user)
    token = link.rsplit("/", 1)[1]
    forged = {
        "flip_signature": token[:-1] + ("A" if token[-1] != "A" else "B"),
        # A valid signature of one payload pasted onto another.
        "other_user": email.unsubscribe_token(user_id=other.pk, kind="shortlist.changed").split(":")[0]
        + token[token.index(":") :],
        "other_kind": email.unsubscribe_token(user_id=user.pk, kind="request.widening_proposed").split(":")[0]
        + token[token.index(":") :],
        "garbage": "not-a-token",
    }[tamper]

    post = Client().post(f"/email/unsubscribe/{forged}")
    get = Client().get(f"/email/unsubscribe/{forged}")

    assert (post.status_code, get.status_code) == (400, 400)
    assert chosen(user) == chosen(other) == {}


def test_a_signed_link_for_an_essential_kind_is_refused():
    user = ClientFactory.create()
    token = email.unsubscribe_token(user_id=user.pk, kind="api_token.created")

    assert Client().post(f"/email/unsubscribe/{token}").status_code == 400
    assert chosen(user) == {}


def test_the_daily_digest_link_turns_off_every_daily_kind():
    user = ClientFactory.create()
    EmailPreferenceFactory.create(user=user, kind="shortlist.changed", delivery="daily")
    EmailPreferenceFactory.create(user=user, kind="request.pool_empty", delivery="immediately")
    token = email.unsubscribe_token(user_id=user.pk, kind="daily_digest")

    assert Client().post(f"/email/unsubscribe/{token}").status_code == 200

    assert chosen(user) == {"shortlist.changed": "never", "request.pool_empty": "immediately"}
