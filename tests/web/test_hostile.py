"""What a hostile or careless client sent the web app, kept as tests: each is refused, and nothing changes."""

import pytest

from accounts.models import User
from hiring_requests import services as hiring
from hiring_requests.models import Invitation
from payments.models import Milestone
from tests.factories import ClientFactory, TimesheetFactory, vetted_engineer
from tests.hiring_requests.conftest import raised
from tests.payments.helpers import engagement, milestone

pytestmark = pytest.mark.django_db


def _invited(rubric_engineer=None):
    engineer = rubric_engineer or vetted_engineer()
    request = raised(ClientFactory.create())
    hiring.matching_run(request_id=request.pk)
    return engineer, Invitation.objects.get(engineer=engineer)


def test_a_mistyped_milestone_step_is_404_and_opens_no_dispute(client):
    made = milestone(engagement(onboarded=False))
    Milestone.objects.filter(pk=made.pk).update(status="submitted")
    client.force_login(made.engagement.client)

    answer = client.post(f"/app/milestones/{made.pk}/aprove")

    assert answer.status_code == 404
    made.refresh_from_db()
    assert made.status == "submitted"


def test_a_mistyped_invitation_answer_is_404_and_changes_nothing(client, rubric):
    engineer, invitation = _invited()
    hiring.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    client.force_login(engineer)

    answer = client.post(f"/app/invitations/{invitation.pk}/typo", {"reason": "hmm"})

    assert answer.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "accepted"


@pytest.mark.parametrize("rate", ["120,50", "0.001", "$95", "<script>", "1e400"])
def test_a_proposed_rate_that_is_not_an_amount_accepts_nothing(client, rubric, rate):
    engineer, invitation = _invited()
    client.force_login(engineer)

    client.post(f"/app/invitations/{invitation.pk}/accept", {"rate": rate})

    invitation.refresh_from_db()
    assert (invitation.status, invitation.agreed_rate_minor) == ("pending", None)


def test_an_email_longer_than_the_column_is_a_field_error_not_a_500(client):
    answer = client.post(
        "/signup",
        {"role": "client", "full_name": "x", "email": "x" * 300 + "@example.com", "password": "a-long-pass-2026"},
    )

    assert answer.status_code == 422
    assert 'id="id_email-error"' in answer.content.decode()
    assert not User.objects.exists()


@pytest.mark.parametrize("entry", ["9" * 5000, "١٢٣", "-1"])
def test_a_disputed_entry_id_that_is_not_an_id_is_refused_without_a_500(client, entry):
    week = TimesheetFactory.create(status="submitted")
    client.force_login(week.engagement.client)

    answer = client.post(f"/app/timesheets/{week.pk}/dispute", {"entry": entry, "reason": "x"})

    assert answer.status_code == 302
    week.refresh_from_db()
    assert week.status == "submitted"


def test_logins_from_the_web_count_against_the_apis_limit(client, settings):
    settings.RATE_LIMIT_LOGIN = "3/60"
    user = ClientFactory.create(email="ada@example.com")
    user.set_password("the-right-pass-2026")
    user.save()

    wrong = [client.post("/login", {"username": "ada@example.com", "password": "nope"}).status_code for _ in range(3)]
    right = client.post("/login", {"username": "ada@example.com", "password": "the-right-pass-2026"})

    assert wrong == [200, 200, 200]
    assert right.status_code == 429
    assert int(right["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session


def test_sign_ups_and_chat_from_the_web_are_rate_limited(client, settings, rubric):
    settings.RATE_LIMIT_REGISTER = "2/3600"
    settings.RATE_LIMIT_CHAT_REST = "2/60"
    signups = []
    for n in range(3):
        form = {"role": "client", "full_name": "x", "email": f"u{n}@example.com", "password": "a-long-pass-2026"}
        signups.append(client.post("/signup", form).status_code)
        client.logout()
    engineer, invitation = _invited()
    hiring.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    conversation = invitation.request.conversations.get(engineer=engineer)
    client.force_login(engineer)
    sends = [
        client.post(f"/app/conversations/{conversation.pk}/send", {"body": f"hello {n}"}).status_code for n in range(3)
    ]

    assert signups == [302, 302, 429]
    assert User.objects.filter(email__endswith="@example.com").count() == 2
    assert sends == [302, 302, 429]
    assert conversation.messages.filter(kind="text").count() == 2


def test_a_chat_message_over_the_limit_says_why_and_stores_nothing(client, rubric):
    engineer, invitation = _invited()
    hiring.invitation_accept(engineer=engineer, invitation_id=invitation.pk)
    conversation = invitation.request.conversations.get(engineer=engineer)
    client.force_login(engineer)

    answer = client.post(f"/app/conversations/{conversation.pk}/send", {"body": "x" * 4001}, follow=True)

    assert "4000" in answer.content.decode()
    assert not conversation.messages.filter(kind="text").exists()


def test_an_engagement_page_names_the_other_side(client, rubric):
    engineer = vetted_engineer(full_name="Grace Hopper")
    made = engagement(onboarded=False, engineer=engineer)
    client.force_login(made.client)

    page = client.get(f"/app/engagements/{made.pk}").content.decode()

    assert "With Grace Hopper" in page


def test_the_funded_page_does_not_wait_for_a_milestone_that_is_not_being_paid(client):
    draft = milestone(engagement(onboarded=False))
    client.force_login(draft.engagement.client)

    answer = client.get(f"/app/milestones/{draft.pk}/funded")

    assert answer.status_code == 302
    assert answer["Location"] == f"/app/engagements/{draft.engagement_id}"
    assert Milestone.objects.get(pk=draft.pk).status == "draft"
