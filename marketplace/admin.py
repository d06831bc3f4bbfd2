"""Admin pieces every app uses."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten
from django.db.models import Model
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


class ReadOnlyInline[ChildT: Model, ParentT: Model](admin.TabularInline[ChildT, ParentT]):
    """Rows shown under their parent and never added, changed or deleted there: events, entries, invitations.

    Every name in `fields` is read-only (set once the subclass is defined).
    """

    extra = 0
    can_delete = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.readonly_fields = flatten(cls.fields or ())

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def money_column(amount_field: str, currency_field: str = "currency", *, description: str) -> Any:
    """An admin column that shows `amount_field` (minor units) as money in the row's currency: "$1,500.00"."""

    @admin.display(description=description, ordering=amount_field)
    def column(model_admin: admin.ModelAdmin[Any], obj: Any) -> str:
        amount = getattr(obj, amount_field)
        return "-" if amount is None else format_money(amount, getattr(obj, currency_field))

    return column


class MoneyFieldsAdmin(admin.ModelAdmin[Any]):
    """A read-only change page that shows each amount once, as money, instead of minor units and a code.

    `money_fields` maps an amount field to (its currency field, the label): {"rate_minor": ("currency", "Rate")}.
    Every field is read-only; there is nothing to save.
    """

    money_fields: dict[str, tuple[str, str]] = {}
    hidden_fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for amount, (currency, label) in cls.money_fields.items():
            setattr(cls, f"{amount}_money", money_column(amount, currency, description=label))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        names = [field.name for field in self.model._meta.fields if field.name not in self.hidden_fields]
        for amount, (currency, _label) in self.money_fields.items():
            names[names.index(amount)] = f"{amount}_money"
            if currency in names:
                names.remove(currency)
        return names

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.get_fields(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)
