"""Admin pieces every app uses."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from marketplace.money import format_money


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """For records that never change by hand: versioned rubrics, ledger entries, Stripe events."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def money_column(amount_field: str, currency_field: str = "currency", *, description: str) -> Any:
    """An admin column that shows `amount_field` (minor units) as money in the row's currency: "$1,500.00"."""

    @admin.display(description=description, ordering=amount_field)
    def column(model_admin: admin.ModelAdmin[Any], obj: Any) -> str:
        return format_money(getattr(obj, amount_field), getattr(obj, currency_field))

    return column
