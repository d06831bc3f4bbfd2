"""The hourly API against a hostile client: every bad input is a 4xx with a stable code, and changes nothing.

The clock is fixed on Monday 2026-11-16 10:00 UTC, inside last week's edit grace, so an
entry may still run into this week's Monday 00:00. Billing is made active in the
database: nothing here reaches Stripe.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from hiring_requests.models import Engagement
from payments.models import BillingStatus, HourlyBilling, TimeEntry, Timesheet, TimesheetEvent, TimesheetStatus
from tests.api_calls import post_json
from tests.factories import StaffFactory, TimeEntryFactory, TimesheetFactory
from tests.payments.helpers import hourly_engagement

pytestmark = pytest.mark.django_db

T = TimesheetStatus
NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a Monday
LAST_WEEK = date(2026, 11, 9)
TUESDAY = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)  # of last week


@pytest.fixture(autouse=True)
def _monday_morning():
    with time_machine.travel(NOW, tick=False):
        yield


def active(made: Engagement) -> Engagement:
    """The client's card is saved (as setup_intent.succeeded would record it); billing started a month ago."""
    HourlyBilling.objects.filter(engagement=made).update(
        status=BillingStatus.ACTIVE,
        payment_method_id="pm_saved",
        card_brand="visa",
        card_last4="4242",
        started_at=NOW - timedelta(days=30),
    )
    return made


def week(made: Engagement, status: str, *, week_start: date = LAST_WEEK, minutes: int = 120) -> Timesheet:
    timesheet = TimesheetFactory.create(engagement=made, week_start=week_start, status=status, minutes=minutes)
    TimeEntryFactory.create(timesheet=timesheet, minutes=minutes)
    return timesheet


def entries_of(made: Engagement) -> list[tuple[datetime, int, str]]:
    return list(
        TimeEntry.objects.filter(timesheet__engagement=made).order_by("pk").values_list("started_at", "minutes", "note")
    )


GOOD = {"started_at": TUESDAY.isoformat(), "minutes": 60, "note": "the worker pool"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**GOOD, "started_at": "2026-11-10T09:00:00"}, 422, "validation_error"),  # naive
        ({**GOOD, "started_at": "0001-01-01T00:00:00+14:00"}, 422, "validation_error"),
        ({**GOOD, "started_at": "0001-01-01T00:00:00-14:00"}, 422, "validation_error"),
        ({**GOOD, "started_at": "9999-12-31T23:59:59-14:00"}, 422, "validation_error"),
        ({**GOOD, "started_at": "9999-12-31T23:59:59+14:00"}, 422, "validation_error"),
        ({**GOOD, "started_at": "2026-11-10T09:00:00\u0000+00:00"}, 422, "validation_error"),
        ({**GOOD, "started_at": 10**30}, 422, "validation_error"),
        ({**GOOD, "started_at": "2099-12-31T23:59:59-14:00"}, 422, "invalid_time_entry"),  # the future
        ({**GOOD, "started_at": "2000-01-01T00:00:00+14:00"}, 422, "invalid_time_entry"),  # before the start
        ({**GOOD, "minutes": 0}, 422, "validation_error"),
        ({**GOOD, "minutes": -30}, 422, "validation_error"),
        ({**GOOD, "minutes": 2**64}, 422, "validation_error"),
        ({**GOOD, "minutes": "60"}, 422, "validation_error"),
        ({**GOOD, "minutes": 60.0}, 422, "validation_error"),
        ({**GOOD, "minutes": True}, 422, "validation_error"),
        ({**GOOD, "note": "a\u0000b"}, 422, "validation_error"),
        ({**GOOD, "note": "\ud800"}, 422, "validation_error"),
        ({**GOOD, "note": "   "}, 422, "invalid_time_entry"),
        ({**GOOD, "status": "paid"}, 422, "validation_error"),
        ({**GOOD, "timesheet_id": 1}, 422, "validation_error"),
        # Sunday 23:30 UTC for an hour runs past Monday 00:00 UTC, where weeks change.
        ({**GOOD, "started_at": "2026-11-15T23:30:00+00:00"}, 422, "invalid_time_entry"),
        # The same moment written with an offset: Monday 00:30 +01:00 is Sunday 23:30 UTC.
        ({**GOOD, "started_at": "2026-11-16T00:30:00+01:00"}, 422, "invalid_time_entry"),
        ({**GOOD, "started_at": "2026-11-16T09:30:00+00:00"}, 422, "invalid_time_entry"),  # ends in the future
    ],
)
def test_a_hostile_time_entry_is_refused_and_nothing_is_logged(client, body, status, code):
    made = active(hourly_engagement(onboarded=False))
    client.force_login(made.engineer)

    refused = post_json(client, f"/api/payments/engagements/{made.pk}/time-entries", body)

    assert refused.status_code == status, refused.json()
    assert refused.json()["code"] == code
    assert entries_of(made) == []
    assert not Timesheet.objects.filter(engagement=made).exists()


@pytest.mark.parametrize("raw", ["{", "[]", "null", '"x"', "1", "[" * 100_000, '{"minutes": ' + "9" * 5_000 + "}"])
def test_a_body_that_is_not_an_object_is_refused(client, raw):
    made = active(hourly_engagement(onboarded=False))
    client.force_login(made.engineer)

    refused = client.post(f"/api/payments/engagements/{made.pk}/time-entries", raw, content_type="application/json")

    assert refused.status_code in (400, 422)
    assert refused.json()["code"] in ("bad_request", "validation_error")
    assert entries_of(made) == []


def test_a_duplicate_or_overlapping_entry_is_refused(client):
    made = active(hourly_engagement(onboarded=False))
    client.force_login(made.engineer)
    path = f"/api/payments/engagements/{made.pk}/time-entries"
    logged = post_json(client, path, GOOD)

    again = post_json(client, path, GOOD)
    overlapping = post_json(client, path, {**GOOD, "started_at": (TUESDAY + timedelta(minutes=59)).isoformat()})
    adjacent = post_json(client, path, {**GOOD, "started_at": (TUESDAY + timedelta(minutes=60)).isoformat()})

    assert logged.status_code == 201
    assert [again.status_code, overlapping.status_code] == [422, 422]
    assert {again.json()["code"], overlapping.json()["code"]} == {"invalid_time_entry"}
    assert adjacent.status_code == 201
    assert [minutes for _, minutes, _ in entries_of(made)] == [60, 60]


def test_another_users_ids_are_not_found_and_change_nothing(client):
    made = active(hourly_engagement(onboarded=False))
    other = active(hourly_engagement(onboarded=False))
    submitted = week(made, T.SUBMITTED)
    entry = submitted.entries.get()
    before = entries_of(made)

    client.force_login(other.engineer)
    logged = post_json(client, f"/api/payments/engagements/{made.pk}/time-entries", GOOD)
    edited = client.patch(f"/api/payments/time-entries/{entry.pk}", {"minutes": 5}, content_type="application/json")
    deleted = client.delete(f"/api/payments/time-entries/{entry.pk}")
    client.force_login(other.client)
    approved = post_json(client, f"/api/payments/timesheets/{submitted.pk}/approve", {})
    disputed = post_json(
        client, f"/api/payments/timesheets/{submitted.pk}/dispute", {"entries": [{"entry_id": entry.pk, "reason": "x"}]}
    )
    capped = client.put(
        f"/api/payments/engagements/{made.pk}/weekly-cap", {"hours": 1}, content_type="application/json"
    )

    answers = [(r.status_code, r.json()["code"]) for r in (logged, edited, deleted, approved, disputed, capped)]
    assert answers == [
        (404, "engagement_not_found"),
        (404, "time_entry_not_found"),
        (404, "time_entry_not_found"),
        (404, "timesheet_not_found"),
        (404, "timesheet_not_found"),
        (404, "engagement_not_found"),
    ]
    assert entries_of(made) == before
    assert Timesheet.objects.get(pk=submitted.pk).status == T.SUBMITTED


_ACTIONS: dict[str, tuple[Callable[[int], str], dict[str, object] | None, set[str]]] = {
    "approve": (lambda pk: f"/api/payments/timesheets/{pk}/approve", {}, {T.SUBMITTED}),
    "pay": (lambda pk: f"/api/payments/timesheets/{pk}/pay", {}, {T.CHARGE_FAILED}),
    "dispute": (lambda pk: f"/api/payments/timesheets/{pk}/dispute", None, {T.SUBMITTED}),
}


@pytest.mark.parametrize(
    ("action", "status"),
    [(action, status) for action, (_, _, allowed) in _ACTIONS.items() for status in T if status not in allowed],
)
def test_a_review_step_in_a_wrong_state_is_a_conflict_and_changes_nothing(client, action, status):
    made = active(hourly_engagement(onboarded=False))
    timesheet = week(made, status)
    path, body, _ = _ACTIONS[action]
    client.force_login(made.client)

    refused = post_json(
        client, path(timesheet.pk), body or {"entries": [{"entry_id": timesheet.entries.get().pk, "reason": "no"}]}
    )

    assert refused.status_code == 409, refused.json()
    assert refused.json()["code"] == "timesheet_state_conflict"
    assert Timesheet.objects.get(pk=timesheet.pk).status == status
    assert not TimesheetEvent.objects.filter(timesheet=timesheet).exists()
    assert not TimeEntry.objects.filter(timesheet=timesheet, disputed=True).exists()


def test_a_dispute_naming_an_entry_of_another_week_is_refused(client):
    made = active(hourly_engagement(onboarded=False))
    submitted = week(made, T.SUBMITTED)
    older = week(made, T.PAID, week_start=LAST_WEEK - timedelta(days=7))
    client.force_login(made.client)

    refused = post_json(
        client,
        f"/api/payments/timesheets/{submitted.pk}/dispute",
        {"entries": [{"entry_id": older.entries.get().pk, "reason": "I never asked for this"}]},
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_time_entry"
    assert Timesheet.objects.get(pk=submitted.pk).status == T.SUBMITTED
    assert not TimeEntry.objects.filter(disputed=True).exists()


@pytest.mark.parametrize("who", ["client", "engineer"])
def test_only_staff_settle_and_nothing_changes_for_others(client, who):
    made = active(hourly_engagement(onboarded=False))
    disputed = week(made, T.DISPUTED)
    client.force_login(getattr(made, who))

    refused = post_json(client, f"/api/payments/staff/timesheets/{disputed.pk}/settle", {"engineer_share_minor": 0})

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    disputed.refresh_from_db()
    assert (disputed.status, disputed.settle_share_minor) == (T.DISPUTED, None)


@pytest.mark.parametrize("share", [-1, 10**12 + 1, 2**64, "0", 0.0, None])
def test_a_settlement_of_the_wrong_type_or_size_is_refused(client, share):
    made = active(hourly_engagement(onboarded=False))
    disputed = week(made, T.DISPUTED)
    client.force_login(StaffFactory.create())

    refused = post_json(client, f"/api/payments/staff/timesheets/{disputed.pk}/settle", {"engineer_share_minor": share})

    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_error"
    assert Timesheet.objects.get(pk=disputed.pk).status == T.DISPUTED


def test_the_timesheets_list_pages_newest_first_with_a_cursor(client, django_assert_num_queries):
    made = active(hourly_engagement(onboarded=False))
    weeks = [week(made, T.PAID, week_start=LAST_WEEK - timedelta(days=7 * n)) for n in range(3)]
    client.force_login(made.client)
    path = f"/api/payments/engagements/{made.pk}/timesheets"

    with django_assert_num_queries(4):
        first = client.get(path, {"limit": 2})
    rest = client.get(path, {"limit": 2, "cursor": first.json()["next_cursor"]})

    assert first.status_code == 200, first.json()
    assert [item["id"] for item in first.json()["items"]] == [weeks[0].pk, weeks[1].pk]
    assert first.json()["has_more"] is True
    assert [item["id"] for item in rest.json()["items"]] == [weeks[2].pk]
    assert rest.json()["has_more"] is False


@pytest.mark.parametrize("cursor", ["zzz", "a:b", "x" * 1_025])
def test_a_made_up_timesheets_cursor_is_refused(client, cursor):
    made = active(hourly_engagement(onboarded=False))
    week(made, T.PAID)
    client.force_login(made.client)

    refused = client.get(f"/api/payments/engagements/{made.pk}/timesheets", {"cursor": cursor})

    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_error"


def test_a_dispute_naming_an_entry_twice_is_refused_and_changes_nothing(client):
    made = active(hourly_engagement(onboarded=False))
    submitted = week(made, T.SUBMITTED)
    entry = submitted.entries.get()
    client.force_login(made.client)

    refused = post_json(
        client,
        f"/api/payments/timesheets/{submitted.pk}/dispute",
        {"entries": [{"entry_id": entry.pk, "reason": "never done"}, {"entry_id": entry.pk, "reason": "fine"}]},
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_time_entry"
    submitted.refresh_from_db()
    entry.refresh_from_db()
    assert (submitted.status, submitted.disputed_minutes) == (T.SUBMITTED, 0)
    assert (entry.disputed, entry.dispute_reason) == (False, "")


def test_editing_an_entry_deleted_meanwhile_is_not_found(client, monkeypatch):
    from payments.services import hourly

    made = active(hourly_engagement(onboarded=False))
    client.force_login(made.engineer)
    entry_id = post_json(client, f"/api/payments/engagements/{made.pk}/time-entries", GOOD).json()["id"]
    lock_timesheet = hourly.lock_timesheet

    def deleted_while_waiting_for_the_lock(timesheet_id, user):
        TimeEntry.objects.filter(pk=entry_id).delete()  # the engineer's DELETE from another tab commits first
        return lock_timesheet(timesheet_id, user)

    monkeypatch.setattr(hourly, "lock_timesheet", deleted_while_waiting_for_the_lock)

    edited = client.patch(f"/api/payments/time-entries/{entry_id}", {"minutes": 30}, content_type="application/json")

    assert edited.status_code == 404
    assert edited.json()["code"] == "time_entry_not_found"
    # The stand-in DELETE ran inside the request's transaction and was rolled back with it; the edit was not made.
    assert [minutes for _, minutes, _ in entries_of(made)] == [60]


def test_an_ended_engagement_takes_no_card_no_cap_and_no_time(rubric):
    from marketplace.errors import EngagementNotFound
    from payments import services

    made = active(hourly_engagement(onboarded=False))
    Engagement.objects.filter(pk=made.pk).update(status="ended")
    before = (TimeEntry.objects.count(), HourlyBilling.objects.get(engagement=made).payment_method_id)

    with pytest.raises(EngagementNotFound):
        services.payment_method_setup(client=made.client, engagement_id=made.pk)
    with pytest.raises(EngagementNotFound):
        services.weekly_cap_set(client=made.client, engagement_id=made.pk, hours=10)
    with pytest.raises(EngagementNotFound):
        services.time_entry_log(engineer=made.engineer, engagement_id=made.pk, started_at=TUESDAY, minutes=60, note="x")

    assert (TimeEntry.objects.count(), HourlyBilling.objects.get(engagement=made).payment_method_id) == before
