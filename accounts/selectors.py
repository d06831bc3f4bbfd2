from django.db.models import QuerySet

from accounts.models import ApiToken, User


def user_with_profiles(*, user_id: int) -> User:
    return User.objects.select_related("client_profile", "engineer_profile").get(pk=user_id)


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
