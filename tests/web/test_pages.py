"""The web app's pages through Django's test client: who sees what, errors by field, nothing changed on refusal."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from hiring_requests import services as hiring
from hiring_requests.models import HiringRequest, Invitation
from payments.models import Milestone
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import enable_payouts, raised

pytestmark = pytest.mark.django_db

START = (timezone.localdate() + timedelta(days=7)).isoformat()
REQUEST_FORM = {
    "title": "Async payments service",
    "description": "Build and run an asyncio service that talks to Stripe.",
    "required_skills": "python, asyncio",
    "nice_to_have_skills": "",
    "min_level": "mid",
    "budget_kind": "hourly",
    "budget": "100.00",
    "currency": "usd",
    "hours_per_week": "20",
    "time_zone": "Europe/London",
    "min_overlap_hours": "4",
    "start_date": START,
}


def test_a_newcomer_signs_up_as_a_client_and_lands_on_their_home(client):
    answer = client.post(
        "/signup", {"role": "client", "full_name": "Ada", "email": "ada@example.com", "password": "a-long-pass-2026"}
    )

    assert answer.status_code == 302
    assert answer["Location"] == "/app/"
    home = client.get("/app/")
    assert home.status_code == 200
    assert "Raise a request" in home.content.decode()
    assert User.objects.get(email="ada@example.com").role == "client"


def test_signup_errors_are_shown_by_field_and_create_nothing(client):
    weak = client.post("/signup", {"role": "engineer", "full_name": "B", "email": "b@example.com", "password": "123"})
    bad_email = client.post("/signup", {"role": "engineer", "full_name": "B", "email": "not-an-email", "password": "x"})

    assert weak.status_code == 422
    assert 'id="id_password-error"' in weak.content.decode()
    assert bad_email.status_code == 422
    assert 'id="id_email-error"' in bad_email.content.decode()
    assert not User.objects.filter(email__in=["b@example.com", "not-an-email"]).exists()


def test_pages_need_a_login(client):
    answer = client.get("/app/requests/new")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/login?next=")


def test_a_client_raises_a_request_and_sees_its_clock(client, rubric):
    vetted_engineer()
    user = ClientFactory.create()
    client.force_login(user)

    answer = client.post("/app/requests/new", REQUEST_FORM)

    created = HiringRequest.objects.get(client=user)
    assert answer.status_code == 302
    assert answer["Location"] == f"/app/requests/{created.pk}"
    assert (created.status, created.budget_minor, sorted(created.required_skills)) == (
        "open",
        10_000,
        ["asyncio", "python"],
    )
    page = client.get(answer["Location"]).content.decode()
    assert "The clock" in page
    assert "data-countdown" in page


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "x"}, "title"),  # the API schema's rule: at least 3 characters
        ({"required_skills": " , "}, "required_skills"),
        ({"budget": "-5"}, "budget"),
        ({"budget": "10.005"}, "budget"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"hours_per_week": "200"}, "hours_per_week"),
        ({"start_date": "1999-01-01"}, "start_date"),
    ],
)
def test_a_request_forms_errors_are_shown_by_field_and_nothing_is_created(client, change, field):
    user = ClientFactory.create()
    client.force_login(user)

    answer = client.post("/app/requests/new", {**REQUEST_FORM, **change})

    assert answer.status_code == 422
    assert f'id="id_{field}-error"' in answer.content.decode()
    assert not HiringRequest.objects.filter(client=user).exists()


def test_another_clients_request_answers_404_and_cannot_be_cancelled(client, rubric):
    owner, stranger = ClientFactory.create(), ClientFactory.create()
    theirs = raised(owner)
    client.force_login(stranger)

    page = client.get(f"/app/requests/{theirs.pk}")
    cancel = client.post(f"/app/requests/{theirs.pk}/cancel")

    assert page.status_code == 404
    assert cancel.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"


def test_an_engineer_cannot_open_client_pages(client, rubric):
    engineer = vetted_engineer()
    client.force_login(engineer)

    assert client.get("/app/requests/new").status_code == 404


def test_an_engineer_accepts_with_a_proposed_rate_from_the_inbox(client, rubric):
    engineer = vetted_engineer()
    request = raised(ClientFactory.create())
    hiring.matching_run(request_id=request.pk)
    invitation = Invitation.objects.get(engineer=engineer)
    client.force_login(engineer)

    inbox = client.get("/app/invitations").content.decode()
    answer = client.post(f"/app/invitations/{invitation.pk}/accept", {"rate": "95.50"})

    assert request.title in inbox
    assert answer.status_code == 302
    invitation.refresh_from_db()
    assert (invitation.status, invitation.agreed_rate_minor) == ("accepted", 9_550)


def test_declining_needs_a_reason_and_without_one_changes_nothing(client, rubric):
    engineer = vetted_engineer()
    request = raised(ClientFactory.create())
    hiring.matching_run(request_id=request.pk)
    invitation = Invitation.objects.get(engineer=engineer)
    client.force_login(engineer)

    client.post(f"/app/invitations/{invitation.pk}/decline", {"reason": ""})

    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_the_client_hires_from_the_shortlist_and_adds_a_milestone(client, rubric):
    engineer = vetted_engineer()
    enable_payouts(engineer)
    owner = ClientFactory.create()
    request = raised(owner, budget_kind="fixed", budget_minor=5_000_000)
    hiring.matching_run(request_id=request.pk)
    hiring.invitation_accept(engineer=engineer, invitation_id=Invitation.objects.get(engineer=engineer).pk)
    client.force_login(owner)

    shortlist = client.get(f"/app/requests/{request.pk}").content.decode()
    hired = client.post(f"/app/requests/{request.pk}/hire", {"engineer_id": engineer.pk})
    engagement_path = hired["Location"]
    added = client.post(engagement_path, {"title": "Worker pool", "amount": "1350.00", "due_date": START})

    assert f'name="engineer_id" value="{engineer.pk}"' in shortlist
    assert added.status_code == 302
    milestone = Milestone.objects.get()
    assert (milestone.amount_minor, milestone.status) == (135_000, "draft")
    assert "Fund $1,350.00 into escrow" in client.get(engagement_path).content.decode()


def test_a_stranger_cannot_see_an_engagement_or_its_milestones(client, rubric):
    engineer = vetted_engineer()
    enable_payouts(engineer)
    owner = ClientFactory.create()
    request = raised(owner, budget_kind="fixed", budget_minor=5_000_000)
    hiring.matching_run(request_id=request.pk)
    hiring.invitation_accept(engineer=engineer, invitation_id=Invitation.objects.get(engineer=engineer).pk)
    engagement = hiring.request_hire(client=owner, request_id=request.pk, engineer_id=engineer.pk)
    client.force_login(ClientFactory.create())

    page = client.get(f"/app/engagements/{engagement.pk}")
    add = client.post(f"/app/engagements/{engagement.pk}", {"title": "Mine", "amount": "10.00", "due_date": START})

    assert (page.status_code, add.status_code) == (404, 404)
    assert not Milestone.objects.exists()


def test_an_engineer_edits_the_profile_matching_reads(client):
    from tests.factories import EngineerProfileFactory, UserFactory

    engineer = UserFactory.create(role="engineer")
    EngineerProfileFactory.create(user=engineer)
    client.force_login(engineer)
    form = {
        "headline": "Async Python",
        "skills": "python, asyncio",
        "hourly_rate": "85.00",
        "currency": "eur",
        "weekly_hours_available": "30",
        "time_zone": "Europe/Berlin",
        "years_experience": "7",
    }

    saved = client.post("/app/profile", form)
    refused = client.post("/app/profile", {**form, "time_zone": "Nowhere/Town", "hourly_rate": "90.00"})

    assert saved.status_code == 302
    engineer.engineer_profile.refresh_from_db()
    profile = engineer.engineer_profile
    assert (profile.hourly_rate_minor, profile.currency, sorted(profile.skills)) == (
        8_500,
        "eur",
        ["asyncio", "python"],
    )
    assert refused.status_code == 422
    assert 'id="id_time_zone-error"' in refused.content.decode()
    profile.refresh_from_db()
    assert profile.hourly_rate_minor == 8_500  # nothing of the refused form was saved


def test_an_engineer_applies_for_vetting_and_sees_the_stage(client, rubric):
    from tests.factories import EngineerProfileFactory, UserFactory
    from vetting.models import Application

    engineer = UserFactory.create(role="engineer")
    EngineerProfileFactory.create(user=engineer)
    client.force_login(engineer)

    short = client.post("/app/vetting", {"statement": "too short", "links": ""})
    applied = client.post(
        "/app/vetting",
        {"statement": "I have run asyncio services in production for years.", "links": "https://example.com/me"},
    )

    assert short.status_code == 422
    assert 'id="id_statement-error"' in short.content.decode()
    assert applied.status_code == 302
    application = Application.objects.get(engineer=engineer)
    assert application.links == ["https://example.com/me"]
    assert "Submitted" in client.get("/app/vetting").content.decode()


def test_the_notifications_page_lists_the_log_and_marks_it_read(client):
    from marketplace.notifications import log, notify_user

    user = ClientFactory.create()
    notify_user(user_id=user.pk, event="shortlist.changed", payload={"request_id": 1, "title": "Payments"})
    log.publish(user.pk)
    client.force_login(user)
    before = client.get("/app/").content.decode()

    page = client.get("/app/notifications").content.decode()

    assert "data-bell>1<" in before
    assert "An engineer joined or left your shortlist." in page  # the kind, as people read it
    assert log.unread_count(user_id=user.pk) == 0


def test_email_preferences_are_saved_and_essential_kinds_stay_on(client):
    from marketplace.models import EmailPreference

    user = ClientFactory.create()
    client.force_login(user)

    answer = client.post(
        "/app/notifications/email",
        {"kind-shortlist.changed": "daily", "kind-api_token.created": "never", "kind-message.created": "bogus"},
    )

    assert answer.status_code == 302
    saved = dict(EmailPreference.objects.filter(user=user).values_list("kind", "delivery"))
    assert saved == {"shortlist.changed": "daily"}  # the essential kind and the garbage were not taken
    assert 'value="daily" selected' in client.get("/app/notifications/email").content.decode()


def test_each_milestone_shows_its_history(client):
    from payments import services as payments
    from tests.payments.helpers import engagement, milestone

    made = milestone(engagement(onboarded=False))
    Milestone.objects.filter(pk=made.pk).update(status="funded")
    payments.milestone_submit(engineer=made.engagement.engineer, milestone_id=made.pk, note="pool done, see PR 12")
    client.force_login(made.engagement.client)

    page = client.get(f"/app/engagements/{made.engagement_id}").content.decode()

    assert "→ <strong>submitted</strong>" in page
    assert "pool done, see PR 12" in page
