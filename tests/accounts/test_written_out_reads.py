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


@pytest.mark.parametrize(
    ("factory", "has", "lacks"),
    [
        (ClientFactory, "client_profile", "engineer_profile"),
        (EngineerFactory, "engineer_profile", "client_profile"),
    ],
    ids=["client", "engineer"],
)
def test_a_user_with_profiles_reads_what_select_related_reads(factory, has, lacks, django_assert_num_queries):
    made = factory.create()
    expected = User.objects.select_related(has).get(pk=made.pk)

    with django_assert_num_queries(1):
        found = user_with_profiles(user_id=made.pk)
    with django_assert_num_queries(0):  # both relations are loaded, the missing one as absent
        profile = getattr(found, has)
        assert not hasattr(found, lacks)

    assert columns_of(found) == columns_of(expected)
    assert columns_of(profile) == columns_of(getattr(expected, has))
    assert profile.user is found
    assert not profile._state.adding  # saving it updates its row


def test_staff_have_no_profile_and_reading_one_asks_nothing(django_assert_num_queries):
    staff = StaffFactory.create()

    with django_assert_num_queries(1):
        found = user_with_profiles(user_id=staff.pk)
    with django_assert_num_queries(0):
        assert not hasattr(found, "client_profile")
        assert not hasattr(found, "engineer_profile")

    assert columns_of(found) == columns_of(User.objects.get(pk=staff.pk))


def test_an_unknown_user_id_raises_does_not_exist():
    with pytest.raises(User.DoesNotExist):
        user_with_profiles(user_id=10**9)


def test_a_token_lookup_reads_what_the_queryset_reads(django_assert_num_queries):
    user = EngineerFactory.create()
    made, raw = api_token_create(user=user, name="laptop")
    api_token_find(raw)  # the first use records last_used_at; the next within a minute only reads

    with django_assert_num_queries(1):
        found = api_token_find(raw)
        assert found is not None
        found_user = found.user  # loaded with the token

    expected = ApiToken.objects.select_related("user").get(pk=made.pk)
    assert found.last_used_at is not None
    assert columns_of(found) == columns_of(expected)
    assert columns_of(found_user) == columns_of(expected.user)


@pytest.mark.parametrize(
    ("factory", "has", "lacks"),
    [
        (ClientFactory, "client_profile", "engineer_profile"),
        (EngineerFactory, "engineer_profile", "client_profile"),
        (StaffFactory, None, "client_profile"),
    ],
    ids=["client", "engineer", "staff"],
)
def test_a_token_lookup_with_profiles_reads_what_select_related_reads(factory, has, lacks, django_assert_num_queries):
    user = factory.create()
    made, raw = api_token_create(user=user, name="laptop")
    api_token_find(raw)
    expected = (User.objects.select_related(has) if has else User.objects).get(pk=user.pk)

    with django_assert_num_queries(1):
        found = api_token_find(raw, with_profiles=True)
        assert found is not None
        found_user = found.user
        profile = getattr(found_user, has) if has else None
        assert not hasattr(found_user, lacks)

    assert columns_of(found) == columns_of(ApiToken.objects.get(pk=made.pk))
    assert columns_of(found_user) == columns_of(expected)
    if has:
        assert profile is not None
        assert columns_of(profile) == columns_of(getattr(expected, has))
        assert profile.user is found_user


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
