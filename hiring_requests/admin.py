"""Staff watch the clock here: requests at risk of missing the 8-hour promise come first."""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from hiring_requests.models import ACTIVE_STATUSES, Engagement, HiringRequest, Invitation, RequestEvent
from marketplace.admin import MoneyFieldsAdmin


class AtRiskFilter(admin.SimpleListFilter):
    title = "8-hour promise"
    parameter_name = "clock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("at_risk", "At risk (2h or less left, no shortlist)"), ("breached", "Breached")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "at_risk":
            return queryset.filter(
                status__in=ACTIVE_STATUSES,
                shortlisted_at=None,
                breached_at=None,
                match_deadline__lte=timezone.now() + timedelta(hours=2),
            )
        if self.value() == "breached":
            return queryset.exclude(breached_at=None)
        return queryset


class InvitationInline(admin.TabularInline[Invitation, HiringRequest]):
    model = Invitation
    fields = ("wave", "rank", "engineer", "status", "score_bp", "sent_at", "expires_at", "responded_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EventInline(admin.TabularInline[RequestEvent, HiringRequest]):
    model = RequestEvent
    fields = ("created_at", "kind", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HiringRequest)
class HiringRequestAdmin(MoneyFieldsAdmin):
    list_display = ("title", "client", "status", "time_left", "waves_sent", "widening_step", "warned", "breached")
    list_filter = (AtRiskFilter, "status")
    search_fields = ("title", "client__email")
    list_select_related = ("client",)
    # Soonest deadline first: what needs attention is on top.
    ordering = ("match_deadline", "id")
    inlines = (InvitationInline, EventInline)
    money_fields = {"budget_minor": ("currency", "Budget")}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="time left")
    def time_left(self, hiring_request: HiringRequest) -> str:
        if hiring_request.match_deadline is None:
            return "not raised"
        if hiring_request.shortlisted_at is not None:
            return "met"
        minutes = int((hiring_request.match_deadline - timezone.now()).total_seconds() // 60)
        return f"{minutes // 60}h {minutes % 60:02d}m" if minutes > 0 else "missed"

    @admin.display(description="warned", boolean=True)
    def warned(self, hiring_request: HiringRequest) -> bool:
        return hiring_request.warned_at is not None

    @admin.display(description="breached", boolean=True)
    def breached(self, hiring_request: HiringRequest) -> bool:
        return hiring_request.breached_at is not None


@admin.register(Engagement)
class EngagementAdmin(MoneyFieldsAdmin):
    list_display = ("id", "request", "client", "engineer", "rate_minor_money", "status", "created_at")
    money_fields = {"rate_minor": ("currency", "Rate")}
    list_select_related = ("request", "client", "engineer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
