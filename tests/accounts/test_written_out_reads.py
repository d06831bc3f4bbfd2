"""The statements every request runs are written out (marketplace.rows); each must read what its QuerySet reads."""

import pytest
from django.db.models import Model

from accounts.models import ApiToken, User
from accounts.selectors import user_with_profiles
from accounts.services import api_token_create, api_token_find
from tests.factories import ClientFactory, EngineerFactory, StaffFactory

pytestmark = pytest.mark.django_db


def columns_of(instance: Model) -> dict[str, object]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.parametrize("factory", [ClientFactory, EngineerFactory, StaffFactory], ids=["client", "engineer", "staff"])
def test_a_user_with_profiles_reads_what_select_related_reads(factory, django_assert_num_queries):
    made = factory.create()
    expected = User.objects.select_related("client_profile", "engineer_profile").get(pk=made.pk)

    with django_assert_num_queries(1):
        found = user_with_profiles(user_id=made.pk)
    with django_assert_num_queries(0):  # both relations are loaded, the missing one as absent
        profiles = {name: getattr(found, name, None) for name in ("client_profile", "engineer_profile")}

    assert columns_of(found) == columns_of(expected)
    for name, profile in profiles.items():
        wanted = getattr(expected, name, None)
        assert (profile is None) == (wanted is None), name
        if profile is not None:
            assert columns_of(profile) == columns_of(wanted)
            assert profile.user is found
            assert not profile._state.adding  # saving it updates its row
    assert sum(profile is not None for profile in profiles.values()) == (0 if made.is_staff else 1)


def test_an_unknown_user_id_raises_does_not_exist():
    with pytest.raises(User.DoesNotExist):
        user_with_profiles(user_id=10**9)


def test_a_token_lookup_reads_what_the_queryset_reads(django_assert_num_queries):
    user = EngineerFactory.create()
    made, raw = api_token_create(user=user, name="laptop")
    api_token_find(raw)  # the first use records last_used_at; the next within a minute only reads

    with django_assert_num_queries(1):
        found = api_token_find(raw)

    expected = ApiToken.objects.select_related("user").get(pk=made.pk)
    assert found is not None
    assert found.last_used_at is not None
    assert columns_of(found) == columns_of(expected)
    assert columns_of(found.user) == columns_of(expected.user)


def test_a_token_lookup_finds_nothing_for_a_revoked_token_or_an_inactive_user():
    user = ClientFactory.create()
    revoked, revoked_raw = api_token_create(user=user, name="old")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=revoked.created_at)
    _, live_raw = api_token_create(user=user, name="live")
    assert api_token_find(live_raw) is not None

    User.objects.filter(pk=user.pk).update(is_active=False)

    assert api_token_find(revoked_raw) is None
    assert api_token_find(live_raw) is None
    assert api_token_find("not-a-token") is None
