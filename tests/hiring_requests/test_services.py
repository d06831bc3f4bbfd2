from datetime import timedelta

import pytest
import time_machine

from hiring_requests import errors, selectors, services
from hiring_requests.models import Engagement, HiringRequest, Invitation, InvitationStatus, RequestEvent, RequestStatus
from marketplace.models import Notification
from tests.factories import ClientFactory, EngineerFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised, request_fields

pytestmark = pytest.mark.django_db

START = "2026-11-02 09:00Z"


@pytest.fixture(autouse=True)
def _small_waves(settings):
    settings.MATCH_WAVE_SIZE = 2
    settings.MATCH_SHORTLIST_TARGET = 2


def fresh(request: HiringRequest) -> HiringRequest:
    return HiringRequest.objects.get(pk=request.pk)


def statuses(request) -> dict[int, str]:
    return dict(request.invitations.values_list("engineer_id", "status"))


def events(request) -> list[str]:
    return list(RequestEvent.objects.filter(request=request).values_list("kind", flat=True))


def test_raising_sets_the_deadline_eight_hours_out(client_user):
    with time_machine.travel(START, tick=False):
        request = raised(client_user)

    assert request.status == RequestStatus.OPEN
    assert request.raised_at is not None
    assert request.match_deadline == request.raised_at + timedelta(hours=8)
    assert events(request) == ["created", "raised"]


def test_only_clients_raise_requests(rubric):
    engineer = EngineerFactory.create()

    with pytest.raises(errors.NotAClient):
        services.request_create(client=engineer, fields=request_fields())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("required_skills", ["<script>"], "required_skills"),
        ("time_zone", "Mars/Base", "time_zone"),
        ("currency", "xyz", "currency"),
    ],
)
def test_invalid_requests_are_refused(client_user, field, value, message):
    with pytest.raises(errors.InvalidRequest, match=message):
        services.request_create(client=client_user, fields=request_fields(**{field: value}))

    assert not client_user.hiring_requests.exists()


def test_a_skill_both_required_and_nice_to_have_counts_as_required(client_user):
    request = services.request_create(
        client=client_user, fields=request_fields(required_skills=["python"], nice_to_have_skills=["python", "redis"])
    )

    assert (request.required_skills, request.nice_to_have_skills) == (["python"], ["redis"])


def test_a_wave_invites_the_best_and_a_second_run_does_nothing(rubric, client_user):
    best, second, third = (vetted_engineer(score_bp=s) for s in (9_500, 9_000, 8_500))
    request = raised(client_user)

    invited = services.matching_run(request_id=request.pk)
    again = services.matching_run(request_id=request.pk)

    request.refresh_from_db()
    assert (invited, again) == (2, 0)
    assert statuses(request) == {best.pk: "pending", second.pk: "pending"}
    assert request.status == RequestStatus.MATCHING
    assert third.pk not in statuses(request)


def test_expiry_then_the_next_wave(rubric, client_user):
    first_wave = [vetted_engineer(score_bp=9_500), vetted_engineer(score_bp=9_400)]
    later = vetted_engineer(score_bp=8_000)
    with time_machine.travel(START, tick=False):
        request = raised(client_user)
        services.matching_run(request_id=request.pk)
    with time_machine.travel("2026-11-02 10:59Z", tick=False):
        services.clock_sweep()
        assert set(statuses(request).values()) == {"pending"}
    with time_machine.travel("2026-11-02 11:00Z", tick=False):
        result = services.clock_sweep()

    assert result == {"expired": 2, "invited": 1}
    assert statuses(request) == {first_wave[0].pk: "expired", first_wave[1].pk: "expired", later.pk: "pending"}
    assert request.invitations.get(engineer=later).wave == 2


def test_widening_is_paced_and_proposed_to_the_client_never_applied_silently(rubric, client_user):
    far_and_pricey = vetted_engineer(time_zone="Asia/Kolkata", hourly_rate_minor=10_900, skills=["asyncio", "python"])
    with time_machine.travel(START, tick=False) as clock:
        request = raised(client_user, budget_minor=10_000, min_overlap_hours=4)
        services.clock_sweep()
        assert fresh(request).pool_empty_at is not None
        assert fresh(request).widening_proposed == 0  # too early: steps are paced along the deadline
        clock.shift(timedelta(minutes=90))
        services.clock_sweep()
        assert fresh(request).widening_proposed == 1
        services.request_widening_answer(client=client_user, request_id=request.pk, accept=True)
        services.clock_sweep()  # still nobody: the engineer is above the budget
        clock.shift(timedelta(minutes=90))
        services.clock_sweep()
        assert fresh(request).widening_proposed == 2
        services.request_widening_answer(client=client_user, request_id=request.pk, accept=True)
        invited = services.matching_run(request_id=request.pk)

    request.refresh_from_db()
    assert invited == 1
    assert statuses(request) == {far_and_pricey.pk: "pending"}
    assert request.widening_step == 2
    widened = RequestEvent.objects.filter(request=request, kind="widened").values_list("data", flat=True)
    assert [(d["what"], d["by"]) for d in widened] == [("relax_time_zone", "client"), ("relax_budget", "client")]


def test_a_declined_widening_is_not_proposed_again_and_the_next_step_still_comes(rubric, client_user):
    # One within budget but far away, one near but above budget: declining the time-zone step leaves the
    # budget step to propose, and accepting it relaxes the budget alone (the declined step stays out of force).
    near_and_pricey = vetted_engineer(time_zone="UTC", hourly_rate_minor=10_900, skills=["asyncio", "python"])
    vetted_engineer(time_zone="Asia/Kolkata", hourly_rate_minor=9_000, skills=["asyncio", "python"])
    with time_machine.travel(START, tick=False) as clock:
        request = raised(client_user, budget_minor=10_000, min_overlap_hours=4)
        services.clock_sweep()
        clock.shift(timedelta(minutes=90))
        services.clock_sweep()
        assert fresh(request).widening_proposed == 1
        services.request_widening_answer(client=client_user, request_id=request.pk, accept=False)
        services.clock_sweep()
        assert fresh(request).widening_proposed == 0  # step 2 waits for its own time
        clock.shift(timedelta(minutes=90))
        services.clock_sweep()
        assert fresh(request).widening_proposed == 2
        services.request_widening_answer(client=client_user, request_id=request.pk, accept=True)
        invited = services.matching_run(request_id=request.pk)
        clock.shift(timedelta(minutes=90))
        services.clock_sweep()

    request.refresh_from_db()
    assert (request.widening_step, request.widening_declined, request.widening_proposed) == (2, [1], 0)
    assert request.widenings_applied() == {2}
    assert invited == 1
    assert statuses(request) == {near_and_pricey.pk: "pending"}  # the far one: the time zone is as written
    assert events(request).count("widening_proposed") == 2
    assert events(request).count("widening_declined") == 1


def test_an_empty_pool_is_said_in_words_at_once(rubric, client_user):
    request = raised(client_user)

    services.clock_sweep()
    clock = selectors.clock(request=fresh(request))

    assert clock["pool_empty"] is True
    assert clock["summary"].startswith("Nobody matches your request as written")


def test_staff_are_warned_two_hours_before_and_the_breach_is_marked_at_the_deadline(client_user, staff):
    with time_machine.travel(START, tick=False):
        request = raised(client_user)
    with time_machine.travel("2026-11-02 14:59Z", tick=False):
        services.clock_sweep()
        assert fresh(request).warned_at is None
    with time_machine.travel("2026-11-02 15:00Z", tick=False):
        services.clock_sweep()
        services.clock_sweep()
        assert fresh(request).warned_at is not None
        assert fresh(request).breached_at is None
    with time_machine.travel("2026-11-02 17:00Z", tick=False):
        services.clock_sweep()
        request.refresh_from_db()
        clock = selectors.clock(request=request)

    assert request.breached_at is not None
    assert events(request).count("at_risk") == 1
    assert events(request).count("deadline_breached") == 1
    assert clock["breached"] is True
    assert "missed" in clock["summary"]
    assert list(selectors.requests_at_risk()) == [request]


def test_a_request_shortlisted_in_time_is_never_warned(rubric, client_user, staff):
    engineer = vetted_engineer()
    with time_machine.travel(START, tick=False):
        request = raised(client_user)
        services.matching_run(request_id=request.pk)
        services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get().pk)
    with time_machine.travel("2026-11-02 18:00Z", tick=False):
        services.clock_sweep()
        request.refresh_from_db()
        clock = selectors.clock(request=request)

    assert (request.warned_at, request.breached_at) == (None, None)
    assert clock["met"] is True


def test_accepting_builds_the_shortlist(rubric, client_user):
    engineer = vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)

    services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get().pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.SHORTLISTED
    assert [i.engineer_id for i in selectors.shortlist_of(request=request)] == [engineer.pk]
    assert selectors.client_has_shortlisted(client=client_user, engineer_id=engineer.pk)


def test_declining_needs_a_reason_and_is_recorded(rubric, client_user):
    engineer = vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    invitation = request.invitations.get()

    with pytest.raises(errors.InvalidRequest):
        services.invitation_decline(engineer=engineer, invitation_id=invitation.pk, reason=" ")
    services.invitation_decline(engineer=engineer, invitation_id=invitation.pk, reason="fully booked")

    invitation.refresh_from_db()
    assert (invitation.status, invitation.decline_reason) == ("declined", "fully booked")


def test_an_expired_invitation_cannot_be_accepted_even_before_the_sweep(rubric, client_user):
    engineer = vetted_engineer()
    with time_machine.travel(START, tick=False):
        request = raised(client_user)
        services.matching_run(request_id=request.pk)
    invitation = request.invitations.get()
    with time_machine.travel("2026-11-02 11:01Z", tick=False), pytest.raises(errors.InvitationExpired):
        services.invitation_accept(engineer=engineer, invitation_id=invitation.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.MATCHING


def test_an_engineer_cannot_answer_someone_elses_invitation(rubric, client_user):
    vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    invitation = request.invitations.get()

    with pytest.raises(errors.InvitationNotFound):
        services.invitation_accept(engineer=vetted_engineer(), invitation_id=invitation.pk)

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def shortlisted_pair(client_user):
    chosen, other, waiting = vetted_engineer(score_bp=9_000), vetted_engineer(score_bp=8_500), vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)
    for engineer in (chosen, other):
        services.invitation_accept(engineer=engineer, invitation_id=request.invitations.get(engineer=engineer).pk)
    services.matching_run(request_id=request.pk)
    return request, chosen, other, waiting


def test_hiring_creates_an_engagement_and_closes_the_rest(rubric, client_user, settings):
    settings.MATCH_SHORTLIST_TARGET = 3
    request, chosen, other, waiting = shortlisted_pair(client_user)
    enable_payouts(chosen)

    engagement = services.request_hire(client=client_user, request_id=request.pk, engineer_id=chosen.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.HIRED
    assert (engagement.engineer_id, engagement.rate_minor, engagement.rate_kind) == (chosen.pk, 8_000, "hourly")
    assert statuses(request) == {chosen.pk: "accepted", other.pk: "not_chosen", waiting.pk: "withdrawn"}


def test_an_engineer_without_payouts_can_be_matched_but_not_hired(rubric, client_user):
    request, chosen, _, _ = shortlisted_pair(client_user)

    with pytest.raises(errors.PayoutsNotEnabled):
        services.request_hire(client=client_user, request_id=request.pk, engineer_id=chosen.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.SHORTLISTED
    assert not Engagement.objects.exists()


def test_only_a_shortlisted_engineer_can_be_hired(rubric, client_user):
    request, _, _, waiting = shortlisted_pair(client_user)
    enable_payouts(waiting)

    with pytest.raises(errors.NotShortlisted):
        services.request_hire(client=client_user, request_id=request.pk, engineer_id=waiting.pk)

    assert not Engagement.objects.exists()


def test_another_client_cannot_hire_or_raise(rubric, client_user):
    request, chosen, _, _ = shortlisted_pair(client_user)
    enable_payouts(chosen)
    stranger = ClientFactory.create()

    with pytest.raises(errors.RequestNotFound):
        services.request_hire(client=stranger, request_id=request.pk, engineer_id=chosen.pk)

    assert not Engagement.objects.exists()


def test_cancelling_withdraws_pending_invitations(rubric, client_user):
    engineer = vetted_engineer()
    request = raised(client_user)
    services.matching_run(request_id=request.pk)

    services.request_cancel(client=client_user, request_id=request.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert statuses(request) == {engineer.pk: "withdrawn"}
    assert services.matching_run(request_id=request.pk) == 0


def test_cancelling_a_shortlisted_request_tells_each_engineer_on_the_shortlist(rubric, client_user):
    request, chosen, other, _ = shortlisted_pair(client_user)
    assert {chosen.pk: "accepted", other.pk: "accepted"}.items() <= statuses(request).items()

    services.request_cancel(client=client_user, request_id=request.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert set(statuses(request).values()) == {"withdrawn"}
    told = Notification.objects.filter(event="invitation.withdrawn", payload__request_id=request.pk)
    assert sorted(told.values_list("user_id", flat=True)) == sorted(statuses(request))
    closed = Invitation.objects.get(request=request, engineer=chosen)
    assert closed.closed_reason == "the client cancelled the request"
    assert not Notification.objects.filter(
        user=client_user, event="shortlist.changed", created_at__gte=request.closed_at
    )


def test_only_drafts_can_be_edited(rubric, client_user):
    request = raised(client_user)

    with pytest.raises(errors.RequestStateConflict):
        services.request_update(client=client_user, request_id=request.pk, fields={"title": "Changed title"})

    request.refresh_from_db()
    assert request.title == "Async payments service"


def test_an_invitation_lists_its_expiry_two_hours_out(rubric, client_user):
    vetted_engineer()
    with time_machine.travel(START, tick=False):
        request = raised(client_user)
        services.matching_run(request_id=request.pk)
        invitation = Invitation.objects.get(request=request)

    assert invitation.expires_at - invitation.sent_at == timedelta(hours=2)
    assert invitation.sent_at.isoformat() == "2026-11-02T09:00:00+00:00"


def test_a_widening_step_that_would_relax_nothing_is_not_proposed(rubric, client_user):
    with time_machine.travel(START, tick=False) as clock:
        # No required overlap: the time-zone step changes nothing, so the budget step is the one proposed.
        request = raised(client_user, min_overlap_hours=0)
        services.clock_sweep()
        clock.shift(timedelta(minutes=180))
        services.clock_sweep()

    request.refresh_from_db()
    assert request.widening_proposed == 2


def test_raising_a_request_whose_start_date_has_passed_is_a_conflict_and_changes_nothing(client_user):
    draft = services.request_create(client=client_user, fields=request_fields(start_date="2000-01-03"))

    with pytest.raises(errors.RequestStateConflict, match="start date has passed"):
        services.request_raise(client=client_user, request_id=draft.pk)

    assert fresh(draft).status == "draft"
