import pytest
import time_machine

from tests.factories import ClientFactory, StaffFactory
from tests.hiring_requests.conftest import raised

pytestmark = pytest.mark.django_db


def test_staff_see_requests_at_risk_soonest_deadline_first(client):
    staff = StaffFactory.create(is_superuser=True)
    with time_machine.travel("2026-11-02 09:00Z", tick=False):
        older = raised(ClientFactory.create(), title="Older request")
    with time_machine.travel("2026-11-02 09:20Z", tick=False):
        newer = raised(ClientFactory.create(), title="Newer request")
    with time_machine.travel("2026-11-02 10:00Z", tick=False):
        raised(ClientFactory.create(), title="Fresh request")
    client.force_login(staff)

    with time_machine.travel("2026-11-02 15:30Z", tick=False):
        response = client.get("/admin/hiring_requests/hiringrequest/?clock=at_risk")

    shown = list(response.context["cl"].result_list)
    assert shown == [older, newer]
    assert b"1h 30m" in response.content
    assert b"1h 50m" in response.content
    assert b"Fresh request" not in response.content


def test_the_at_risk_filter_follows_the_warning_window_setting(client, settings):
    settings.MATCH_WARN_BEFORE_MINUTES = 100
    staff = StaffFactory.create(is_superuser=True)
    with time_machine.travel("2026-11-02 09:00Z", tick=False):
        older = raised(ClientFactory.create(), title="Older request")
    with time_machine.travel("2026-11-02 09:20Z", tick=False):
        raised(ClientFactory.create(), title="Newer request")
    client.force_login(staff)

    with time_machine.travel("2026-11-02 15:30Z", tick=False):
        response = client.get("/admin/hiring_requests/hiringrequest/?clock=at_risk")

    assert list(response.context["cl"].result_list) == [older]
    assert b"At risk (1h 40m or less left, no shortlist)" in response.content
