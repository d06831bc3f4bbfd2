"""Staff watch the money here and settle disputes; every change goes through payments.services."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User
from marketplace.admin import MoneyFieldsAdmin, ReadOnlyAdmin, ReadOnlyInline, money_column
from marketplace.errors import DomainError
from marketplace.money import format_money
from payments import services
from payments.models import (
    HourlyBilling,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Milestone,
    MilestoneEvent,
    PayoutAccount,
    StripeEvent,
    TimeEntry,
    Timesheet,
    TimesheetEvent,
)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    """Kept current by Stripe's account.updated; not edited by hand."""

    list_display = ("engineer", "stripe_account_id", "payouts_enabled", "updated_at")
    list_filter = ("payouts_enabled",)
    search_fields = ("engineer__email", "stripe_account_id")
    list_select_related = ("engineer",)


class MilestoneEventInline(ReadOnlyInline[MilestoneEvent, Milestone]):
    model = MilestoneEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")


@admin.register(Milestone)
class MilestoneAdmin(MoneyFieldsAdmin):
    list_display = ("id", "title", "status", "amount", "engagement", "review_deadline", "disputed_at")
    list_select_related = ("engagement__request", "engagement__engineer", "engagement__client")
    list_filter = ("status",)
    search_fields = ("title", "engagement__client__email", "engagement__engineer__email")
    inlines = (MilestoneEventInline,)
    actions = ("settle",)
    amount = money_column("amount_minor", description="Amount")
    money_fields = {"amount_minor": ("currency", "Amount"), "settle_share_minor": ("currency", "Engineer's share")}
    # Stripe.js's key to this PaymentIntent belongs to the paying client, not on staff screens.
    hidden_fields = ("client_secret",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing and the settle action need it; every field stays read-only.
        return bool(request.user.is_staff)

    @admin.action(description="Settle a dispute (split between engineer and client)")
    def settle(self, request: HttpRequest, queryset: QuerySet[Milestone]) -> HttpResponse | None:
        return settle_action(
            self,
            request,
            queryset,
            what="milestones",
            explanation="The engineer's share is transferred (less the platform fee); the rest is refunded to the "
            "client.",
            at_stake=lambda milestone: milestone.amount_minor,
            settle_one=lambda staff, pk, share: services.milestone_settle(
                staff=staff, milestone_id=pk, engineer_share_minor=share
            ),
        )


def settle_action[M: (Milestone, Timesheet)](
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[M],
    *,
    what: str,
    explanation: str,
    at_stake: Callable[[M], int],
    settle_one: Callable[[User, int, int], object],
) -> HttpResponse | None:
    """The one settle path for disputed money (milestones and hourly weeks): a form of shares, then each settled.

    Every settlement goes through its service with the staff member as the actor.
    """
    if not request.POST.get("apply"):
        rows = [(obj, at_stake(obj)) for obj in queryset]
        context = {"rows": rows, "title": "Settle", "what": what, "explanation": explanation}
        return TemplateResponse(request, "admin/payments/settle.html", context)
    staff = request.user
    assert isinstance(staff, User)  # noqa: S101 - admin views only run for logged-in users
    for obj in queryset:
        try:
            share = int(request.POST.get(f"share_{obj.pk}", ""))
            settle_one(staff, obj.pk, share)
        except ValueError:
            model_admin.message_user(
                request, f"{obj}: the engineer's share must be a whole number of minor units.", messages.ERROR
            )
        except DomainError as exc:
            model_admin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
        else:
            model_admin.message_user(
                request, f"{obj}: settled, {format_money(share, obj.currency)} to the engineer.", messages.SUCCESS
            )
    return None


class TimeEntryInline(ReadOnlyInline[TimeEntry, Timesheet]):
    model = TimeEntry
    fields = ("started_at", "minutes", "note", "disputed", "dispute_reason")


class TimesheetEventInline(ReadOnlyInline[TimesheetEvent, Timesheet]):
    model = TimesheetEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")


def _settle_week(staff: User, timesheet_id: int, share: int) -> None:
    settled = services.timesheet_settle(staff=staff, timesheet_id=timesheet_id, engineer_share_minor=share)
    if settled.status == "approved":
        services.timesheet_charge(timesheet_id=timesheet_id)  # a failure is a state; the sweep retries the rest


@admin.register(Timesheet)
class TimesheetAdmin(MoneyFieldsAdmin):
    list_display = ("id", "week_start", "status", "amount", "engagement", "review_deadline", "charge_failures")
    list_select_related = ("engagement__request", "engagement__engineer", "engagement__client")
    list_filter = ("status",)
    search_fields = ("engagement__client__email", "engagement__engineer__email", "payment_intent_id")
    inlines = (TimeEntryInline, TimesheetEventInline)
    actions = ("settle",)
    amount = money_column("amount_minor", description="Amount")
    money_fields = {
        "rate_minor": ("currency", "Hourly rate"),
        "amount_minor": ("currency", "Amount"),
        "settle_share_minor": ("currency", "Engineer's share of the disputed amount"),
    }
    hidden_fields = ("client_secret",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_staff)

    @admin.action(description="Settle a disputed week (bill part of the disputed hours)")
    def settle(self, request: HttpRequest, queryset: QuerySet[Timesheet]) -> HttpResponse | None:
        return settle_action(
            self,
            request,
            queryset,
            what="timesheets",
            explanation="The engineer's share of the disputed amount is charged with the undisputed hours and paid "
            "out (less the platform fee); the rest is not charged.",
            at_stake=services.disputed_amount,
            settle_one=_settle_week,
        )


@admin.register(HourlyBilling)
class HourlyBillingAdmin(ReadOnlyAdmin):
    """Kept by the card setup and Stripe's setup_intent.succeeded; not edited by hand."""

    list_display = ("engagement", "status", "card_brand", "card_last4", "started_at", "paused_at")
    list_filter = ("status",)
    list_select_related = ("engagement__request", "engagement__engineer", "engagement__client")
    exclude = ("setup_client_secret",)


class LedgerEntryInline(ReadOnlyInline[LedgerEntry, LedgerTransaction]):
    model = LedgerEntry
    fields = ("account", "money")
    money = money_column("amount", description="Amount")


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("reference", "kind", "milestone", "created_at")
    list_select_related = (
        "milestone__engagement__request",
        "milestone__engagement__engineer",
        "milestone__engagement__client",
    )
    list_filter = ("kind",)
    search_fields = ("reference",)
    inlines = (LedgerEntryInline,)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(MoneyFieldsAdmin, ReadOnlyAdmin):
    list_display = ("code", "kind", "balance_money")
    money_fields = {"balance": ("currency", "Balance")}
    list_filter = ("kind", "currency")
    search_fields = ("code",)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "received_at", "processed_at", "attempts")
    list_filter = ("type",)
    search_fields = ("stripe_id",)
