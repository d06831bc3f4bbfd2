"""Two workers at once: the request row lock and the unique index keep every wave whole and single."""

import threading
from typing import cast

import pytest
from django.db import connection, transaction

from hiring_requests import errors, matching, services
from hiring_requests.models import Invitation, InvitationStatus, RequestEvent, RequestStatus
from marketplace.models import Notification
from tests.concurrency import one_waits_for_the_other, race
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.hiring_requests.conftest import raised

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_running_the_same_job_send_one_wave(rubric):
    engineers = [vetted_engineer() for _ in range(8)]
    request = raised(ClientFactory.create())

    outcomes = race(
        lambda: services.matching_run(request_id=request.pk),
        lambda: services.matching_run(request_id=request.pk),
    )

    assert sorted(cast(list[int], outcomes)) == [0, 5]
    assert Invitation.objects.filter(request=request).count() == 5
    assert set(Invitation.objects.values_list("wave", flat=True)) == {1}
    assert set(Invitation.objects.values_list("engineer_id", flat=True)) <= {e.pk for e in engineers}


def test_two_sweeps_at_once_invite_each_engineer_once(rubric):
    # 40 h a week each: room for two 20-hour offers, so eight engineers cover three waves of five.
    engineers = [vetted_engineer(weekly_hours_available=40) for _ in range(8)]
    requests = [raised(ClientFactory.create()) for _ in range(3)]

    race(services.clock_sweep, services.clock_sweep, services.clock_sweep)

    for request in requests:
        assert Invitation.objects.filter(request=request).count() == 5
        assert RequestEvent.objects.filter(request=request, kind="wave_sent").count() == 1
    for engineer in engineers:
        assert Invitation.objects.filter(engineer=engineer).count() <= 2  # never offered past their hours


def test_a_job_killed_mid_wave_leaves_nothing_and_the_next_run_finishes_it(rubric, monkeypatch):
    for _ in range(5):
        vetted_engineer()
    request = raised(ClientFactory.create())
    real_record = services._record

    def die_after_inviting(req, kind, **data):
        if kind == "wave_sent":
            raise SystemExit("worker killed")
        real_record(req, kind, **data)

    monkeypatch.setattr(services, "_record", die_after_inviting)
    with pytest.raises(SystemExit):
        services.matching_run(request_id=request.pk)
    assert Invitation.objects.filter(request=request).count() == 0
    monkeypatch.setattr(services, "_record", real_record)

    invited = services.matching_run(request_id=request.pk)

    assert invited == 5
    assert Invitation.objects.filter(request=request).count() == 5


def test_waves_for_different_requests_at_once_respect_the_pending_cap(rubric, monkeypatch, settings):
    # Both waves rank before either commits (the barrier holds them there), so both see the same free
    # engineers; the re-check under the profile locks lets only one wave offer each of them.
    settings.MATCH_MAX_PENDING_INVITATIONS = 1
    engineers = [vetted_engineer(weekly_hours_available=40) for _ in range(5)]
    requests = [raised(ClientFactory.create()) for _ in range(2)]
    ranked_both = threading.Barrier(2)
    real_rank = matching.rank

    def rank_then_wait(*args, **kwargs):
        candidates = real_rank(*args, **kwargs)
        ranked_both.wait(timeout=10)
        return candidates

    monkeypatch.setattr(matching, "rank", rank_then_wait)

    outcomes = race(*[lambda r=r: services.matching_run(request_id=r.pk) for r in requests])

    assert sorted(cast(list[int], outcomes)) == [0, 5]  # one wave took all five; the other invited nobody
    for engineer in engineers:
        assert Invitation.objects.filter(engineer=engineer, status="pending").count() == 1
    assert not RequestEvent.objects.filter(kind="pool_empty").exists()  # filled up by a rival is not an empty pool


def _someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def test_cancelling_leaves_an_offer_the_sweep_expired_meanwhile_expired(rubric):
    # The sweep expires an offer without the request's lock; the cancel's withdrawal waits for the offer's row
    # and then finds it expired: EXPIRED -> WITHDRAWN is not a move INVITATION_MOVES allows.
    engineer = vetted_engineer()
    client = ClientFactory.create()
    request = raised(client)
    services.matching_run(request_id=request.pk)
    offer = request.invitations.get()

    def sweep(held: threading.Event, release: threading.Event) -> None:
        with transaction.atomic():
            Invitation.objects.filter(pk=offer.pk, status=InvitationStatus.PENDING).update(
                status=InvitationStatus.EXPIRED
            )
            held.set()
            release.wait(timeout=10)

    failures = one_waits_for_the_other(
        sweep,
        lambda: services.request_cancel(client=client, request_id=request.pk),
        waiting=_someone_waits_for_a_row_lock,
    )

    assert failures == []
    offer.refresh_from_db()
    request.refresh_from_db()
    assert (request.status, offer.status) == (RequestStatus.CANCELLED, InvitationStatus.EXPIRED)
    assert not Notification.objects.filter(user=engineer, event="invitation.withdrawn").exists()


def test_a_decline_and_a_cancel_at_once_both_finish_in_lock_order(rubric, monkeypatch):
    # The decline stops between locking and writing its event; the cancel starts then. Had the decline locked only
    # the offer, the cancel would hold the request and wait for the offer, the decline's event row would wait for
    # the request (its foreign key), and PostgreSQL would abort one of them as a deadlock.
    engineer = vetted_engineer()
    client = ClientFactory.create()
    request = raised(client)
    services.matching_run(request_id=request.pk)
    offer = request.invitations.get()
    real_record = services._record
    pause: list[tuple[threading.Event, threading.Event]] = []

    def record_after_a_pause(req, kind, **data):
        if kind == "declined":
            held, release = pause[0]
            held.set()
            release.wait(timeout=10)
        real_record(req, kind, **data)

    monkeypatch.setattr(services, "_record", record_after_a_pause)

    def decline(held: threading.Event, release: threading.Event) -> None:
        pause.append((held, release))
        services.invitation_decline(engineer=engineer, invitation_id=offer.pk, reason="booked")

    failures = one_waits_for_the_other(
        decline,
        lambda: services.request_cancel(client=client, request_id=request.pk),
        waiting=_someone_waits_for_a_row_lock,
    )

    offer.refresh_from_db()
    request.refresh_from_db()
    assert failures == []
    assert (request.status, offer.status) == (RequestStatus.CANCELLED, InvitationStatus.DECLINED)
    assert not Notification.objects.filter(user=engineer, event="invitation.withdrawn").exists()


def test_a_revocation_during_an_accept_takes_the_engineer_off_without_a_deadlock(rubric, monkeypatch):
    # The accept holds the request and the offer and is about to lock the engineer's vetted record; staff revoke
    # that record meanwhile. Taking the engineer off the request under the record's lock (inside the revocation)
    # would wait for the request while the accept waited for the record: a deadlock PostgreSQL breaks by
    # aborting one. After the revocation commits, the withdrawal waits its turn and the accept finds the record
    # revoked.
    from vetting.models import VettedRecord
    from vetting.services import vetted_record_revoke

    engineer = vetted_engineer()
    staff = StaffFactory.create()
    request = raised(ClientFactory.create())
    services.matching_run(request_id=request.pk)
    offer = request.invitations.get()
    record = VettedRecord.objects.get(engineer=engineer, revoked_at=None)
    real_vetting_current = services._vetting_current
    pause: list[tuple[threading.Event, threading.Event]] = []

    def vetting_current_after_a_pause(engineer_id, **kwargs):
        held, release = pause[0]
        held.set()
        release.wait(timeout=10)
        return real_vetting_current(engineer_id, **kwargs)

    monkeypatch.setattr(services, "_vetting_current", vetting_current_after_a_pause)

    def accept(held: threading.Event, release: threading.Event) -> None:
        pause.append((held, release))
        services.invitation_accept(engineer=engineer, invitation_id=offer.pk)

    failures = one_waits_for_the_other(
        accept,
        lambda: vetted_record_revoke(record_id=record.pk, actor=staff, reason="plagiarised take-home"),
        waiting=_someone_waits_for_a_row_lock,
    )

    assert [type(failure) for failure in failures] == [errors.EngineerNotVetted]
    offer.refresh_from_db()
    record.refresh_from_db()
    assert record.revoked_at is not None
    assert offer.status == InvitationStatus.WITHDRAWN
    assert "plagiarised take-home" in offer.closed_reason
