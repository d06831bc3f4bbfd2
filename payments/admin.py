"""Staff watch the money here and settle disputes; every change goes through payments.services."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User
from marketplace.admin import MoneyFieldsAdmin, ReadOnlyAdmin, money_column
from marketplace.errors import DomainError
from marketplace.money import format_money
from payments import services
from payments.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Milestone,
    MilestoneEvent,
    PayoutAccount,
    StripeEvent,
)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    """Kept current by Stripe's account.updated; not edited by hand."""

    list_display = ("engineer", "stripe_account_id", "payouts_enabled", "updated_at")
    list_filter = ("payouts_enabled",)
    search_fields = ("engineer__email", "stripe_account_id")
    list_select_related = ("engineer",)


class MilestoneEventInline(admin.TabularInline[MilestoneEvent, Milestone]):
    model = MilestoneEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        if not request.POST.get("apply"):
            return TemplateResponse(request, "admin/payments/settle.html", {"queryset": queryset, "title": "Settle"})
        staff = request.user
        assert isinstance(staff, User)  # noqa: S101 - admin views only run for logged-in users
        for milestone in queryset:
            try:
                share = int(request.POST.get(f"share_{milestone.pk}", ""))
                services.milestone_settle(staff=staff, milestone_id=milestone.pk, engineer_share_minor=share)
            except ValueError:
                self.message_user(
                    request, f"{milestone}: the engineer's share must be a whole number of minor units.", messages.ERROR
                )
            except DomainError as exc:
                self.message_user(request, f"{milestone}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{milestone}: settled, {format_money(share, milestone.currency)} to the engineer.",
                    messages.SUCCESS,
                )
        return None


class LedgerEntryInline(admin.TabularInline[LedgerEntry, LedgerTransaction]):
    model = LedgerEntry
    fields = ("account", "money")
    readonly_fields = fields
    money = money_column("amount", description="Amount")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
