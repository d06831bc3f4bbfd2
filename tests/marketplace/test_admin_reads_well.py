"""The admin speaks plain English and shows money as money."""

import pytest

from payments.models import Milestone
from tests.factories import MilestoneFactory, StaffFactory
from tests.payments.helpers import engagement

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory.create(is_superuser=True))
    return client


def _milestone(amount_minor: int, currency: str, title: str) -> Milestone:
    return MilestoneFactory.create(engagement__currency=currency, title=title, amount_minor=amount_minor)


def test_milestone_changelist_shows_amounts_as_money_in_their_currency(rubric, staff_client):
    _milestone(150_000, "usd", "Worker pool")
    _milestone(5_000, "jpy", "Rate limiter")

    page = staff_client.get("/admin/payments/milestone/").content.decode()

    assert "$1,500.00" in page
    assert "¥5,000" in page
    assert "150000" not in page


def test_admin_index_uses_proper_app_labels_and_plurals(staff_client):
    page = staff_client.get("/admin/").content.decode()

    assert "Hiring requests" in page
    assert "Stripe events" in page
    assert "API tokens" in page
    assert "Hiring_Requests" not in page
    assert "entrys" not in page


def test_a_milestone_is_titled_by_its_title_and_engagement(rubric):
    milestone = _milestone(150_000, "usd", "Worker pool")
    engagement = milestone.engagement

    assert (
        str(milestone)
        == f"Worker pool ({engagement.request.title}: {engagement.engineer.email} for {engagement.client.email})"
    )


def test_a_profile_is_titled_by_its_users_email(rubric):
    engineer = engagement(onboarded=False).engineer

    assert str(engineer.engineer_profile) == f"Engineer profile of {engineer.email}"


def test_milestone_page_hides_the_client_secret_and_has_nothing_to_save(rubric, staff_client):
    milestone = _milestone(150_000, "usd", "Worker pool")
    Milestone.objects.filter(pk=milestone.pk).update(client_secret="pi_123_secret_456")

    page = staff_client.get(f"/admin/payments/milestone/{milestone.pk}/change/").content.decode()

    assert "$1,500.00" in page
    assert "pi_123_secret_456" not in page
    assert 'name="_save"' not in page


def test_engagement_and_request_pages_show_rates_and_budgets_as_money(rubric, staff_client):
    made = engagement(onboarded=False)

    engagement_page = staff_client.get(f"/admin/hiring_requests/engagement/{made.pk}/change/").content.decode()
    request_page = staff_client.get(f"/admin/hiring_requests/hiringrequest/{made.request_id}/change/").content.decode()

    assert "$1,000.00" in engagement_page
    assert "Rate minor" not in engagement_page
    assert "$100.00" in request_page
    assert "Budget minor" not in request_page
