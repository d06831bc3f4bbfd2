import json

import pytest

from accounts.models import ClientProfile, EngineerProfile
from tests.factories import ClientFactory, EngineerFactory

pytestmark = pytest.mark.django_db


def patch_json(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


def test_engineer_edits_own_profile_and_skills_are_normalized(client):
    engineer = EngineerFactory.create()
    client.force_login(engineer)
    profile = engineer.engineer_profile

    response = patch_json(
        client,
        f"/api/accounts/engineer-profiles/{profile.pk}",
        {"skills": [" Python", "python", "Async IO", "PostgreSQL "], "hourly_rate_minor": 12_000, "currency": "EUR"},
    )

    assert response.status_code == 200
    profile.refresh_from_db()
    assert profile.skills == ["async-io", "postgresql", "python"]
    assert profile.hourly_rate_minor == 12_000
    assert profile.currency == "eur"
    assert profile.headline == "Backend engineer"


def test_client_edits_own_profile(client):
    user = ClientFactory.create()
    client.force_login(user)

    response = patch_json(
        client,
        f"/api/accounts/client-profiles/{user.client_profile.pk}",
        {"company": "Globex", "time_zone": "Asia/Tokyo"},
    )

    assert response.status_code == 200
    assert response.json() == {"id": user.client_profile.pk, "company": "Globex", "time_zone": "Asia/Tokyo"}


def test_it_validates_ownership_of_engineer_profiles(client):
    owner, outsider = EngineerFactory.create(), EngineerFactory.create()
    client.force_login(outsider)

    response = patch_json(client, f"/api/accounts/engineer-profiles/{owner.engineer_profile.pk}", {"headline": "pwned"})

    assert response.status_code == 404
    assert response.json()["code"] == "profile_not_found"
    assert EngineerProfile.objects.get(pk=owner.engineer_profile.pk).headline == "Backend engineer"


def test_it_validates_ownership_of_client_profiles(client):
    owner, outsider = ClientFactory.create(), ClientFactory.create()
    client.force_login(outsider)

    response = patch_json(client, f"/api/accounts/client-profiles/{owner.client_profile.pk}", {"company": "pwned"})

    assert response.status_code == 404
    assert ClientProfile.objects.get(pk=owner.client_profile.pk).company == "Acme Ltd"


def test_unwritable_fields_are_refused_and_nothing_changes(client):
    engineer = EngineerFactory.create()
    client.force_login(engineer)
    profile = engineer.engineer_profile

    response = patch_json(
        client, f"/api/accounts/engineer-profiles/{profile.pk}", {"headline": "New", "user_id": 999, "id": 5}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    profile.refresh_from_db()
    assert profile.headline == "Backend engineer"
    assert profile.user_id == engineer.pk


@pytest.mark.parametrize("zone", ["Mars/Olympus", "localtime", "posixrules", "Factory", "posix/Europe/Berlin", ""])
def test_a_bad_time_zone_is_refused_and_nothing_changes(client, zone):
    engineer = EngineerFactory.create()
    client.force_login(engineer)
    profile = engineer.engineer_profile

    response = patch_json(
        client, f"/api/accounts/engineer-profiles/{profile.pk}", {"headline": "New", "time_zone": zone}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "time_zone" in response.json()["detail"]
    profile.refresh_from_db()
    assert (profile.headline, profile.time_zone) == ("Backend engineer", "Europe/Berlin")


def test_a_bad_skill_is_refused(client):
    engineer = EngineerFactory.create()
    client.force_login(engineer)

    response = patch_json(
        client, f"/api/accounts/engineer-profiles/{engineer.engineer_profile.pk}", {"skills": ["<b>"]}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert EngineerProfile.objects.get(user=engineer).skills == ["asyncio", "django", "python"]


def test_a_negative_rate_is_refused(client):
    engineer = EngineerFactory.create()
    client.force_login(engineer)

    response = patch_json(
        client, f"/api/accounts/engineer-profiles/{engineer.engineer_profile.pk}", {"hourly_rate_minor": -1}
    )

    assert response.status_code == 422
    assert EngineerProfile.objects.get(user=engineer).hourly_rate_minor == 8_000


def test_a_client_cannot_edit_an_engineer_profile_through_its_own_id(client):
    user = ClientFactory.create()
    client.force_login(user)

    response = patch_json(client, f"/api/accounts/engineer-profiles/{user.client_profile.pk}", {"headline": "x"})

    assert response.status_code == 404


def test_staff_edit_an_engineers_skills_in_admin_as_comma_separated_text(client, db):
    from tests.factories import EngineerProfileFactory, StaffFactory

    profile = EngineerProfileFactory.create(skills=["django", "python"])
    client.force_login(StaffFactory.create(is_superuser=True))
    url = f"/admin/accounts/engineerprofile/{profile.pk}/change/"
    page = client.get(url).content.decode()
    form = {
        "user": profile.user_id,
        "headline": profile.headline,
        "skills": "Python, Async IO,  django",
        "hourly_rate_minor": profile.hourly_rate_minor,
        "currency": profile.currency,
        "weekly_hours_available": profile.weekly_hours_available,
        "time_zone": profile.time_zone,
        "years_experience": profile.years_experience,
        "bio": "",
    }

    saved = client.post(url, form)
    refused = client.post(url, {**form, "skills": "python, not a skill!"})

    assert 'value="django, python"' in page
    assert saved.status_code == 302, saved.content.decode()[:2000]
    profile.refresh_from_db()
    assert profile.skills == ["async-io", "django", "python"]
    assert refused.status_code == 200
    assert "is not a skill name" in refused.content.decode()
