from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest

from accounts.models import ApiToken, ClientProfile, EngineerProfile, User
from marketplace.admin import money_column
from marketplace.timezones import utc_offset_minutes


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    ordering = ("email",)
    list_display = ("email", "full_name", "role", "is_staff", "is_active", "date_joined")
    list_filter = ("role", "is_staff", "is_active")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name", "role")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined", "welcome_sent_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "role", "password1", "password2")}),)
    readonly_fields = ("last_login", "date_joined", "welcome_sent_at")


@admin.register(ClientProfile)
class ClientProfileAdmin(admin.ModelAdmin[ClientProfile]):
    list_display = ("user", "company", "time_zone", "updated_at")
    search_fields = ("user__email", "company")
    list_select_related = ("user",)


@admin.register(EngineerProfile)
class EngineerProfileAdmin(admin.ModelAdmin[EngineerProfile]):
    list_display = ("user", "headline", "hourly_rate", "weekly_hours_available", "time_zone")
    hourly_rate = money_column("hourly_rate_minor", description="Hourly rate")
    # Derived from the time zone, as the API's profile update does.
    readonly_fields = ("utc_offset_minutes",)

    def save_model(self, request: HttpRequest, obj: EngineerProfile, form: Any, change: bool) -> None:
        obj.utc_offset_minutes = utc_offset_minutes(obj.time_zone)
        super().save_model(request, obj, form, change)

    search_fields = ("user__email", "headline")
    list_select_related = ("user",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Read-only: staff can see and revoke-by-inspection, never read a secret (none is stored)."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    readonly_fields = ("user", "name", "prefix", "digest", "created_at", "last_used_at", "revoked_at")

    def has_add_permission(self, request: object) -> bool:
        return False
