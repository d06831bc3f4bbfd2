"""The tables of hiring_requests are the rule: REQUEST_MOVES, INVITATION_MOVES and ENGAGEMENT_MOVES.

Only `_move` and `_move_invitation` (and a few guarded bulk updates) write a state.
Every pair of states is tried against them: a move the table lists is saved, any
other is refused with the app's conflict error and saves nothing.
Then each service that changes a state is run and the moves it made are read back from
the database (bulk updates included): each is in the table, and between them the
services make every move the tables list.
"""

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Model
from django.utils import timezone

from accounts.models import User
from hiring_requests import errors, services
from hiring_requests.models import (
    ACTIVE_STATUSES,
    ENGAGEMENT_MOVES,
    HOLDING_STATUSES,
    INVITATION_MOVES,
    REQUEST_MOVES,
    Engagement,
    EngagementStatus,
    HiringRequest,
    Invitation,
    InvitationStatus,
    RequestStatus,
    moves_into,
)
from tests.factories import ClientFactory, HiringRequestFactory, InvitationFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised, request_fields
from tests.status_writes import status_writes
from vetting.models import VettedRecord

pytestmark = pytest.mark.django_db

R, Inv = RequestStatus, InvitationStatus
REQUEST_PAIRS = list(itertools.product(R.values, R.values))
INVITATION_PAIRS = list(itertools.product(Inv.values, Inv.values))
Moves = dict[str, frozenset[str]]
MACHINES: dict[str, tuple[type[Model], Moves, type[Any]]] = {
    "request": (HiringRequest, REQUEST_MOVES, RequestStatus),
    "invitation": (Invitation, INVITATION_MOVES, InvitationStatus),
    "engagement": (Engagement, ENGAGEMENT_MOVES, EngagementStatus),
}


def pairs_of(table: Moves) -> set[tuple[str, str]]:
    return {(state, to) for state, allowed in table.items() for to in allowed}


# --- the tables --------------------------------------------------------------------------


@pytest.mark.parametrize("machine", MACHINES)
def test_each_table_names_every_state_and_only_its_states(machine):
    _, table, choices = MACHINES[machine]

    assert set(table) == set(choices.values)
    assert set().union(*table.values()) <= set(choices.values)
    assert all(state not in allowed for state, allowed in table.items())  # a move changes the state


def test_the_final_states_go_nowhere():
    assert [s for s in R.values if not REQUEST_MOVES[s]] == [R.CLOSED, R.CANCELLED]
    assert [s for s in Inv.values if not INVITATION_MOVES[s]] == [
        Inv.DECLINED,
        Inv.EXPIRED,
        Inv.WITHDRAWN,
        Inv.NOT_CHOSEN,
    ]
    assert ENGAGEMENT_MOVES[EngagementStatus.ENDED] == frozenset()


def test_the_named_groups_of_states_agree_with_the_tables():
    # A draft or any request the clock runs for may be cancelled; an offer that holds hours may be withdrawn.
    assert moves_into(REQUEST_MOVES, R.CANCELLED) == {R.DRAFT, *ACTIVE_STATUSES}
    assert moves_into(INVITATION_MOVES, Inv.WITHDRAWN) == set(HOLDING_STATUSES)
    assert moves_into(INVITATION_MOVES, Inv.EXPIRED) == {Inv.PENDING}


def test_only_the_move_functions_and_the_guarded_bulk_updates_write_a_state():
    assert status_writes("hiring_requests") == {
        ("hiring_requests/services.py", "_move"),
        ("hiring_requests/services.py", "_move_invitation"),
        # Bulk updates standing in for a move, each guarded by the states it moves from (said where each is).
        ("hiring_requests/services.py", "invitations_expire"),
        ("hiring_requests/services.py", "_withdraw_pending"),
        ("hiring_requests/services.py", "request_close"),
    }


# --- every pair, through _move -------------------------------------------------------------


def _request_in(client: User, status: str) -> HiringRequest:
    return HiringRequestFactory.create(client=client, status=status)


@pytest.mark.parametrize(("from_status", "to_status"), REQUEST_PAIRS, ids=[f"{a}->{b}" for a, b in REQUEST_PAIRS])
def test_the_request_table_decides_every_move(client_user, from_status, to_status):
    request = _request_in(client_user, from_status)
    before = HiringRequest.objects.values().get(pk=request.pk)
    request.title = "changed in memory only"  # not among the fields the move saves
    allowed = to_status in REQUEST_MOVES[from_status]

    if allowed:
        services._move(request, R(to_status), fields=[])
    else:
        with pytest.raises(errors.RequestStateConflict, match=f"A {from_status} request cannot become {to_status}"):
            services._move(request, R(to_status), fields=[])

    assert HiringRequest.objects.values().get(pk=request.pk) == {
        **before,
        "status": to_status if allowed else from_status,
    }
    assert request.status == (to_status if allowed else from_status)


@pytest.mark.parametrize(("from_status", "to_status"), INVITATION_PAIRS, ids=[f"{a}->{b}" for a, b in INVITATION_PAIRS])
def test_the_invitation_table_decides_every_move(rubric, client_user, from_status, to_status):
    invitation = InvitationFactory.create(
        request=_request_in(client_user, R.MATCHING), engineer=vetted_engineer(), status=from_status
    )
    before = Invitation.objects.values().get(pk=invitation.pk)
    invitation.decline_reason = "changed in memory only"
    allowed = to_status in INVITATION_MOVES[from_status]

    if allowed:
        services._move_invitation(invitation, Inv(to_status), fields=[])
    else:
        with pytest.raises(errors.InvitationNotPending, match=f"A {from_status} invitation cannot become {to_status}"):
            services._move_invitation(invitation, Inv(to_status), fields=[])

    assert Invitation.objects.values().get(pk=invitation.pk) == {
        **before,
        "status": to_status if allowed else from_status,
    }


# --- every move the services make -------------------------------------------------------------


def _states() -> dict[str, dict[int, str]]:
    return {name: dict(model._default_manager.values_list("pk", "status")) for name, (model, _, _) in MACHINES.items()}


def moves_made(operation: Callable[[], object]) -> dict[str, set[tuple[str, str]]]:
    """Run `operation` and read back, for each machine, the (from, to) moves of the rows that existed before it."""
    before = _states()
    operation()
    after = _states()
    return {
        name: {(before[name][pk], status) for pk, status in rows.items() if before[name].get(pk, status) != status}
        for name, rows in after.items()
    }


def _invited(client: User, *engineers: User) -> HiringRequest:
    """A matching request with a pending offer to each of `engineers` (the first wave)."""
    request = raised(client)
    services.matching_run(request_id=request.pk)
    assert set(request.invitations.values_list("engineer_id", flat=True)) == {e.pk for e in engineers}
    return request


def _accept(request: HiringRequest, engineer: User) -> None:
    services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get(engineer=engineer).pk)


def _shortlisted(client: User, *engineers: User) -> HiringRequest:
    """A shortlisted request: the first engineer accepted, the others are still deciding."""
    request = _invited(client, *engineers)
    _accept(request, engineers[0])
    return request


def _hired(client: User) -> HiringRequest:
    chosen = vetted_engineer()
    enable_payouts(chosen)
    request = _shortlisted(client, chosen)
    services.request_hire(client=client, request_id=request.pk, engineer_id=chosen.pk)
    return request


def _lapse(engineer: User) -> None:
    """The engineer's vetting ends as an expiry does: before any sweep has closed their offers."""
    VettedRecord.objects.filter(engineer=engineer).update(expires_at=timezone.now() - timedelta(minutes=1))


def _hire_after_a_lapse(client: User, staff: User) -> Callable[[], object]:
    chosen = vetted_engineer()
    enable_payouts(chosen)
    request = _shortlisted(client, chosen)
    _lapse(chosen)

    def hire() -> None:
        with pytest.raises(errors.EngineerNotVetted):
            services.request_hire(client=client, request_id=request.pk, engineer_id=chosen.pk)

    return hire


def _lapse_while_pending_and_shortlisted(client: User, staff: User) -> Callable[[], object]:
    engineer = vetted_engineer()
    _invited(client, engineer)
    _shortlisted(ClientFactory.create(), engineer)
    return lambda: services.engineer_vetting_lapsed(engineer_id=engineer.pk, reason="the engineer's vetting expired")


def _hire(client: User, staff: User) -> Callable[[], object]:
    chosen, other, waiting = vetted_engineer(score_bp=9_000), vetted_engineer(score_bp=8_500), vetted_engineer()
    enable_payouts(chosen)
    request = _shortlisted(client, chosen, other, waiting)
    _accept(request, other)
    return lambda: services.request_hire(client=client, request_id=request.pk, engineer_id=chosen.pk)


def _invite_by_hand(client: User, staff: User) -> Callable[[], object]:
    engineer, request = vetted_engineer(), raised(client)
    return lambda: services.invitation_by_hand(staff=staff, request_id=request.pk, engineer_id=engineer.pk)


def _decline(client: User, staff: User) -> Callable[[], object]:
    engineer = vetted_engineer()
    offer = _invited(client, engineer).invitations.get()
    return lambda: services.invitation_decline(engineer=engineer, invitation_id=offer.pk, reason="booked")


def _leave_the_shortlist(client: User, staff: User) -> Callable[[], object]:
    engineer = vetted_engineer()
    offer = _shortlisted(client, engineer).invitations.get()
    return lambda: services.invitation_withdraw(engineer=engineer, invitation_id=offer.pk, reason="booked")


def _accept_first(client: User, staff: User) -> Callable[[], object]:
    engineer = vetted_engineer()
    request = _invited(client, engineer)
    return lambda: _accept(request, engineer)


def _cancel(make: Callable[[User], HiringRequest]) -> Callable[[User, User], Callable[[], object]]:
    def setup(client: User, staff: User) -> Callable[[], object]:
        request = make(client)
        return lambda: services.request_cancel(client=client, request_id=request.pk)

    return setup


def _draft(client: User) -> HiringRequest:
    return services.request_create(client=client, fields=request_fields())


def _close(client: User, staff: User) -> Callable[[], object]:
    request = _hired(client)
    return lambda: services.request_close(client=client, request_id=request.pk)


def _raise(client: User, staff: User) -> Callable[[], object]:
    draft = _draft(client)
    return lambda: services.request_raise(client=client, request_id=draft.pk)


def _first_wave(client: User, staff: User) -> Callable[[], object]:
    vetted_engineer()
    request = raised(client)
    return lambda: services.matching_run(request_id=request.pk)


def _expire(client: User, staff: User) -> Callable[[], object]:
    _invited(client, vetted_engineer())
    return lambda: services.invitations_expire(now=timezone.now() + timedelta(days=7))


# Each service that changes a state, from a state it starts from, and the moves it makes (machine -> pairs).
OPERATIONS: dict[str, tuple[Callable[[User, User], Callable[[], object]], dict[str, set[tuple[str, str]]]]] = {
    "raise": (_raise, {"request": {(R.DRAFT, R.OPEN)}}),
    "cancel a draft": (_cancel(_draft), {"request": {(R.DRAFT, R.CANCELLED)}}),
    "cancel an open request": (_cancel(raised), {"request": {(R.OPEN, R.CANCELLED)}}),
    "first wave": (_first_wave, {"request": {(R.OPEN, R.MATCHING)}}),
    "invite by hand": (_invite_by_hand, {"request": {(R.OPEN, R.MATCHING)}}),
    "cancel while matching": (
        _cancel(lambda client: _invited(client, vetted_engineer())),
        {"request": {(R.MATCHING, R.CANCELLED)}, "invitation": {(Inv.PENDING, Inv.WITHDRAWN)}},
    ),
    "first accept": (
        _accept_first,
        {"request": {(R.MATCHING, R.SHORTLISTED)}, "invitation": {(Inv.PENDING, Inv.ACCEPTED)}},
    ),
    "decline": (_decline, {"invitation": {(Inv.PENDING, Inv.DECLINED)}}),
    "expire": (_expire, {"invitation": {(Inv.PENDING, Inv.EXPIRED)}}),
    "cancel while shortlisted": (
        _cancel(lambda client: _shortlisted(client, vetted_engineer(), vetted_engineer())),
        {
            "request": {(R.SHORTLISTED, R.CANCELLED)},
            "invitation": {(Inv.PENDING, Inv.WITHDRAWN), (Inv.ACCEPTED, Inv.WITHDRAWN)},
        },
    ),
    "leave the shortlist": (
        _leave_the_shortlist,
        {"request": {(R.SHORTLISTED, R.MATCHING)}, "invitation": {(Inv.ACCEPTED, Inv.WITHDRAWN)}},
    ),
    "vetting lapses": (
        _lapse_while_pending_and_shortlisted,
        {
            "request": {(R.SHORTLISTED, R.MATCHING)},
            "invitation": {(Inv.PENDING, Inv.WITHDRAWN), (Inv.ACCEPTED, Inv.WITHDRAWN)},
        },
    ),
    "hire": (
        _hire,
        {
            "request": {(R.SHORTLISTED, R.HIRED)},
            "invitation": {(Inv.ACCEPTED, Inv.NOT_CHOSEN), (Inv.PENDING, Inv.WITHDRAWN)},
        },
    ),
    "hire after the vetting lapsed": (
        _hire_after_a_lapse,
        {"request": {(R.SHORTLISTED, R.MATCHING)}, "invitation": {(Inv.ACCEPTED, Inv.WITHDRAWN)}},
    ),
    "close": (
        _close,
        {"request": {(R.HIRED, R.CLOSED)}, "engagement": {(EngagementStatus.ACTIVE, EngagementStatus.ENDED)}},
    ),
}


@pytest.fixture(autouse=True)
def _small_waves(settings):
    settings.MATCH_WAVE_SIZE = 3
    settings.MATCH_SHORTLIST_TARGET = 3


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_service_makes_the_moves_listed_and_each_is_in_its_table(rubric, client_user, staff, operation):
    setup, expected = OPERATIONS[operation]
    call = setup(client_user, staff)

    made = moves_made(call)

    assert made == {name: expected.get(name, set()) for name in MACHINES}
    for name, (_, table, _) in MACHINES.items():
        assert made[name] <= pairs_of(table)


def test_between_them_the_services_make_every_move_of_every_table():
    for name, (_, table, _) in MACHINES.items():
        listed = set().union(*(expected.get(name, set()) for _, expected in OPERATIONS.values()))
        assert listed == pairs_of(table), name
