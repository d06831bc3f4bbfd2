"""Staff read reviews (private notes included) and hide one with a recorded reason."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User
from marketplace.errors import DomainError
from reviews import services
from reviews.models import Reputation, Review


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin[Review]):
    list_display = ("id", "role", "author", "subject", "overall", "created_at", "hidden_at")
    list_filter = ("role", "overall", "hidden_at")
    search_fields = ("author__email", "subject__email", "public_text")
    list_select_related = ("author", "subject")
    readonly_fields = [field.name for field in Review._meta.fields]
    actions = ("hide",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Hide from everyone but staff (give a reason)")
    def hide(self, request: HttpRequest, queryset: QuerySet[Review]) -> HttpResponse | None:
        reason = request.POST.get("reason", "")
        if not request.POST.get("apply"):
            return TemplateResponse(request, "admin/reviews/hide.html", {"queryset": queryset, "title": "Hide"})
        staff = request.user
        assert isinstance(staff, User)  # noqa: S101 - admin views only run for logged-in users
        for review in queryset:
            try:
                services.review_hide(staff=staff, review_id=review.pk, reason=reason)
            except DomainError as exc:
                self.message_user(request, f"{review}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{review}: hidden.", messages.SUCCESS)
        return None


@admin.register(Reputation)
class ReputationAdmin(admin.ModelAdmin[Reputation]):
    list_display = ("user", "rating_bp", "review_count", "paid_engagements", "updated_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
