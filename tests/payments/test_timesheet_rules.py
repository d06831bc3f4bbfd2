"""The rules of logging time: weeks in UTC whatever the zone, the weekly cap, and what is refused (changing nothing)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.models import EngineerProfile
from payments import services
from payments.errors import InvalidTimeEntry, WeeklyCapExceeded
from payments.models import BillingStatus, HourlyBilling, TimeEntry, Timesheet
from tests.api_calls import post_json
from tests.payments.helpers import hourly_engagement

pytestmark = pytest.mark.django_db

# Sunday 2026-11-29 23:59 UTC and Monday 2026-11-30 00:00 UTC: the last minute of one week and the first of the next.
SUNDAY_LAST_MINUTE = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
MONDAY_MIDNIGHT = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def active(made, *, started=datetime(2026, 10, 1, tzinfo=UTC)) -> None:
    """The client's card is saved (as setup_intent.succeeded records it) since `started`."""
    HourlyBilling.objects.filter(engagement=made).update(
        status=BillingStatus.ACTIVE, started_at=started, payment_method_id="pm_x", card_last4="4242"
    )


@pytest.mark.parametrize(
    ("zone", "sunday_local", "monday_local"),
    [
        ("Pacific/Kiritimati", "2026-11-30", "2026-11-30"),  # UTC+14: both are Monday there
        ("Etc/GMT+12", "2026-11-29", "2026-11-29"),  # UTC-12: both are Sunday there
    ],
)
def test_weeks_turn_at_monday_midnight_utc_in_every_zone(client, zone, sunday_local, monday_local):
    made = hourly_engagement(onboarded=False)
    active(made)
    EngineerProfile.objects.filter(user=made.engineer).update(time_zone=zone)
    client.force_login(made.engineer)

    with time_machine.travel(MONDAY_MIDNIGHT + timedelta(hours=2), tick=False):
        last = post_json(
            client,
            f"/api/payments/engagements/{made.pk}/time-entries",
            {"started_at": SUNDAY_LAST_MINUTE.isoformat(), "minutes": 1, "note": "deploy"},
        )
        first = post_json(
            client,
            f"/api/payments/engagements/{made.pk}/time-entries",
            {"started_at": MONDAY_MIDNIGHT.isoformat(), "minutes": 60, "note": "review"},
        )

    assert (last.status_code, first.status_code) == (201, 201)
    weeks = {entry.timesheet.week_start.isoformat() for entry in TimeEntry.objects.select_related("timesheet")}
    assert weeks == {"2026-11-23", "2026-11-30"}
    assert (last.json()["local_date"], last.json()["time_zone"]) == (sunday_local, zone)
    assert first.json()["local_date"] == monday_local


def test_an_offset_given_in_the_clients_zone_across_a_dst_change_lands_in_the_utc_week():
    """New York left daylight time on Sunday 2026-11-01 at 02:00 (UTC-4 to UTC-5); weeks stay in UTC."""
    made = hourly_engagement(onboarded=False)
    active(made)
    before = datetime.fromisoformat("2026-11-01T01:30:00-04:00")  # 05:30 UTC, Sunday: the week of 26 October
    sunday_night = datetime.fromisoformat("2026-11-01T18:59:00-05:00")  # 23:59 UTC, still that week
    monday = datetime.fromisoformat("2026-11-01T19:00:00-05:00")  # Monday 00:00 UTC: the week of 2 November

    for started_at in (before, sunday_night, monday):
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=started_at,
            minutes=1,
            note="on call",
            now=datetime(2026, 11, 2, 6, tzinfo=UTC),
        )

    weeks = sorted(Timesheet.objects.values_list("week_start", "minutes"))
    assert [(week.isoformat(), minutes) for week, minutes in weeks] == [("2026-10-26", 2), ("2026-11-02", 1)]


def test_an_entry_may_not_run_past_monday_midnight_utc():
    made = hourly_engagement(onboarded=False)
    active(made)

    with pytest.raises(InvalidTimeEntry, match="Monday 00:00 UTC"):
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=SUNDAY_LAST_MINUTE,
            minutes=2,
            note="deploy",
            now=MONDAY_MIDNIGHT + timedelta(hours=1),
        )

    assert not TimeEntry.objects.exists()


def test_a_week_over_the_cap_is_refused_with_a_clear_422(client):
    made = hourly_engagement(onboarded=False, hours_per_week=2)
    active(made)
    client.force_login(made.engineer)

    with time_machine.travel(MONDAY_MIDNIGHT + timedelta(days=2), tick=False):
        fits = post_json(
            client,
            f"/api/payments/engagements/{made.pk}/time-entries",
            {"started_at": (MONDAY_MIDNIGHT + timedelta(hours=9)).isoformat(), "minutes": 90, "note": "design"},
        )
        over = post_json(
            client,
            f"/api/payments/engagements/{made.pk}/time-entries",
            {"started_at": (MONDAY_MIDNIGHT + timedelta(days=1, hours=9)).isoformat(), "minutes": 31, "note": "more"},
        )

    assert fits.status_code == 201
    assert over.status_code == 422
    assert over.json()["code"] == "weekly_cap_exceeded"
    assert "capped at 2 h; 1 h 30 min are logged, so at most 30 more minutes fit" in over.json()["detail"]
    assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [90]
    assert Timesheet.objects.get().minutes == 90


def test_a_raised_cap_applies_from_the_next_week(client):
    made = hourly_engagement(onboarded=False, hours_per_week=2)
    active(made)
    client.force_login(made.client)
    with time_machine.travel(MONDAY_MIDNIGHT + timedelta(days=2), tick=False):
        raised = client.put(
            f"/api/payments/engagements/{made.pk}/weekly-cap", json.dumps({"hours": 3}), content_type="application/json"
        )
        billing = client.get(f"/api/payments/engagements/{made.pk}/billing").json()
        this_week = MONDAY_MIDNIGHT + timedelta(hours=9)
        with pytest.raises(WeeklyCapExceeded):
            services.time_entry_log(
                engineer=made.engineer,
                engagement_id=made.pk,
                started_at=this_week,
                minutes=180,
                note="too much this week",
            )
    next_week = MONDAY_MIDNIGHT + timedelta(days=7, hours=9)
    with time_machine.travel(next_week + timedelta(days=1), tick=False):
        services.time_entry_log(
            engineer=made.engineer, engagement_id=made.pk, started_at=next_week, minutes=180, note="fits next week"
        )

    assert raised.status_code == 200
    assert raised.json() == {"engagement_id": made.pk, "hours": 3, "applies_from": "2026-12-07"}
    assert (billing["hours_this_week"], billing["hours_next_week"]) == (2, 3)
    assert list(Timesheet.objects.values_list("week_start", "minutes")) == [(next_week.date(), 180)]


def test_only_the_client_changes_the_cap(client):
    made = hourly_engagement(onboarded=False, hours_per_week=2)
    client.force_login(made.engineer)

    refused = client.put(
        f"/api/payments/engagements/{made.pk}/weekly-cap", json.dumps({"hours": 50}), content_type="application/json"
    )

    assert refused.status_code == 404
    assert refused.json()["code"] == "engagement_not_found"
    assert not made.weekly_caps.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"started_at": "2026-12-02T09:00:00", "minutes": 30, "note": "x"}, "validation_error"),  # no offset
        ({"started_at": "0001-01-01T00:00:00+14:00", "minutes": 30, "note": "x"}, "validation_error"),
        ({"started_at": "9999-12-31T23:59:59-12:00", "minutes": 30, "note": "x"}, "validation_error"),
        ({"started_at": "2026-12-02T09:00:00Z", "minutes": 0, "note": "x"}, "validation_error"),
        ({"started_at": "2026-12-02T09:00:00Z", "minutes": 1441, "note": "x"}, "validation_error"),
        ({"started_at": "2026-12-02T09:00:00Z", "minutes": "30", "note": "x"}, "validation_error"),
        ({"started_at": "2026-12-02T09:00:00Z", "minutes": 30, "note": "x\u0000"}, "validation_error"),
        ({"started_at": "2026-12-02T09:00:00Z", "minutes": 30, "note": "   "}, "invalid_time_entry"),
        ({"started_at": "2026-12-03T11:00:00Z", "minutes": 30, "note": "tomorrow"}, "invalid_time_entry"),  # future
        ({"started_at": "2026-09-30T09:00:00Z", "minutes": 30, "note": "before the start"}, "invalid_time_entry"),
        ({"started_at": "2026-11-20T09:00:00Z", "minutes": 30, "note": "a closed week"}, "invalid_time_entry"),
    ],
)
def test_bad_entries_are_refused_and_store_nothing(client, body, code):
    made = hourly_engagement(onboarded=False)
    active(made)
    client.force_login(made.engineer)

    with time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=False):
        refused = post_json(client, f"/api/payments/engagements/{made.pk}/time-entries", body)

    assert refused.status_code == 422, refused.json()
    assert refused.json()["code"] == code
    assert not TimeEntry.objects.exists()


def test_overlapping_entries_are_refused():
    made = hourly_engagement(onboarded=False)
    active(made)
    now = datetime(2026, 12, 2, 18, tzinfo=UTC)
    start = datetime(2026, 12, 2, 9, tzinfo=UTC)
    services.time_entry_log(
        engineer=made.engineer, engagement_id=made.pk, started_at=start, minutes=60, note="a", now=now
    )

    with pytest.raises(InvalidTimeEntry, match="overlaps"):
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=start + timedelta(minutes=59),
            minutes=10,
            note="b",
            now=now,
        )

    assert TimeEntry.objects.count() == 1


def test_edits_stay_in_their_week_and_end_with_the_grace():
    made = hourly_engagement(onboarded=False)
    active(made)
    start = datetime(2026, 11, 27, 9, tzinfo=UTC)  # Friday of the week of 23 November
    entry = services.time_entry_log(
        engineer=made.engineer,
        engagement_id=made.pk,
        started_at=start,
        minutes=60,
        note="a",
        now=datetime(2026, 11, 28, tzinfo=UTC),
    )

    edited = services.time_entry_edit(
        engineer=made.engineer, entry_id=entry.pk, minutes=90, now=datetime(2026, 11, 30, 11, 59, tzinfo=UTC)
    )
    with pytest.raises(InvalidTimeEntry, match="stays in its week"):
        services.time_entry_edit(
            engineer=made.engineer,
            entry_id=entry.pk,
            started_at=datetime(2026, 11, 30, 9, tzinfo=UTC),
            now=datetime(2026, 11, 30, 11, tzinfo=UTC),
        )
    with pytest.raises(InvalidTimeEntry, match="closed"):
        services.time_entry_edit(
            engineer=made.engineer, entry_id=entry.pk, minutes=30, now=datetime(2026, 11, 30, 12, tzinfo=UTC)
        )

    entry.refresh_from_db()
    assert edited.minutes == 90
    assert (entry.minutes, entry.started_at) == (90, start)
    assert Timesheet.objects.get().minutes == 90


def test_another_engineer_cannot_touch_an_entry(client):
    made = hourly_engagement(onboarded=False)
    active(made)
    entry = services.time_entry_log(
        engineer=made.engineer,
        engagement_id=made.pk,
        started_at=datetime(2026, 11, 27, 9, tzinfo=UTC),
        minutes=60,
        note="mine",
        now=datetime(2026, 11, 28, tzinfo=UTC),
    )
    stranger = hourly_engagement(onboarded=False).engineer
    client.force_login(stranger)

    with time_machine.travel(datetime(2026, 11, 28, tzinfo=UTC), tick=False):
        patched = client.patch(
            f"/api/payments/time-entries/{entry.pk}", json.dumps({"minutes": 1}), content_type="application/json"
        )
        deleted = client.delete(f"/api/payments/time-entries/{entry.pk}")
        logged = post_json(
            client,
            f"/api/payments/engagements/{made.pk}/time-entries",
            {"started_at": "2026-11-27T12:00:00Z", "minutes": 5, "note": "not mine"},
        )

    assert [patched.status_code, deleted.status_code, logged.status_code] == [404, 404, 404]
    assert [patched.json()["code"], logged.json()["code"]] == ["time_entry_not_found", "engagement_not_found"]
    assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [60]


def test_a_fixed_engagement_has_no_timesheets(client):
    from tests.payments.helpers import engagement

    made = engagement(onboarded=False)

    with pytest.raises(Exception, match="milestones") as refused:
        services.time_entry_log(
            engineer=made.engineer,
            engagement_id=made.pk,
            started_at=datetime(2026, 11, 27, 9, tzinfo=UTC),
            minutes=60,
            note="x",
        )

    assert refused.value.code == "not_hourly"  # type: ignore[attr-defined]
