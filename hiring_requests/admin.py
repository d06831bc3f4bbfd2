"""Staff watch the clock here: requests at risk of missing the 8-hour promise come first."""

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import User
from hiring_requests import selectors, services
from hiring_requests.models import Engagement, HiringRequest, Invitation, RequestEvent
from marketplace.admin import MoneyFieldsAdmin, ReadOnlyInline
from marketplace.errors import DomainError


def _staff(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - admin views only run for logged-in staff
    return user


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0  # refused by the service with a clear message


class AtRiskFilter(admin.SimpleListFilter):
    title = "8-hour promise"
    parameter_name = "clock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        hours, minutes = divmod(settings.MATCH_WARN_BEFORE_MINUTES, 60)
        window = f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
        return [("at_risk", f"At risk ({window} or less left, no shortlist)"), ("breached", "Breached")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "at_risk":
            return queryset.filter(pk__in=selectors.requests_near_deadline().values("pk"))
        if self.value() == "breached":
            return queryset.exclude(breached_at=None)
        return queryset


class InvitationInline(ReadOnlyInline[Invitation, HiringRequest]):
    model = Invitation
    fields = ("wave", "rank", "engineer", "status", "score_bp", "sent_at", "expires_at", "responded_at")


class EventInline(ReadOnlyInline[RequestEvent, HiringRequest]):
    model = RequestEvent
    fields = ("created_at", "kind", "data")


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
    actions = ("rematch", "extend_deadline", "invite_by_hand")

    def _ask(
        self,
        request: HttpRequest,
        queryset: QuerySet[HiringRequest],
        *,
        action: str,
        title: str,
        why: str,
        inputs: list[tuple[str, str, str]],
    ) -> TemplateResponse:
        context = {"title": title, "explanation": why, "queryset": queryset, "action": action, "inputs": inputs}
        return TemplateResponse(request, "admin/hiring_requests/clock_action.html", context)

    def _each(self, request: HttpRequest, queryset: QuerySet[HiringRequest], call: Any, done: str) -> None:
        for hiring_request in queryset:
            try:
                outcome = call(hiring_request)
            except DomainError as exc:
                self.message_user(request, f"{hiring_request}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{hiring_request}: {done.format(outcome=outcome)}", messages.SUCCESS)

    @admin.action(description="Re-run matching now")
    def rematch(self, request: HttpRequest, queryset: QuerySet[HiringRequest]) -> None:
        staff = _staff(request)
        self._each(
            request, queryset, lambda r: services.request_rematch(staff=staff, request_id=r.pk), "{outcome} invited."
        )

    @admin.action(description="Extend the matching deadline (with a reason)")
    def extend_deadline(self, request: HttpRequest, queryset: QuerySet[HiringRequest]) -> HttpResponse | None:
        if not request.POST.get("apply"):
            return self._ask(
                request,
                queryset,
                action="extend_deadline",
                title="Extend the deadline",
                why="The client is told the new deadline and the reason.",
                inputs=[("hours", "Hours (1-48)", "number"), ("reason", "Why (the client reads it)", "textarea")],
            )
        staff = _staff(request)
        hours, reason = _int(request.POST.get("hours")), request.POST.get("reason", "")
        self._each(
            request,
            queryset,
            lambda r: services.request_extend_deadline(staff=staff, request_id=r.pk, hours=hours, reason=reason),
            "deadline moved to {outcome.match_deadline:%Y-%m-%d %H:%M} UTC.",
        )
        return None

    @admin.action(description="Invite an engineer by hand")
    def invite_by_hand(self, request: HttpRequest, queryset: QuerySet[HiringRequest]) -> HttpResponse | None:
        if not request.POST.get("apply"):
            return self._ask(
                request,
                queryset,
                action="invite_by_hand",
                title="Invite an engineer by hand",
                why="The engineer must be vetted, quote in the request's currency and have the hours free.",
                inputs=[("email", "The engineer's email", "email")],
            )
        staff = _staff(request)
        engineer = User.objects.filter(email__iexact=request.POST.get("email", "").strip()).first()
        if engineer is None:
            self.message_user(request, "No user with that email.", messages.ERROR)
            return None
        self._each(
            request,
            queryset,
            lambda r: services.invitation_by_hand(staff=staff, request_id=r.pk, engineer_id=engineer.pk),
            f"{engineer.email} invited.",
        )
        return None

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
