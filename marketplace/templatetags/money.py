"""`{{ amount_minor|money:currency }}`: templates show money through the same formatter as the admin."""

from django import template

from marketplace.money import format_money

register = template.Library()


@register.filter(name="money")
def money(amount_minor: int, currency: str) -> str:
    return format_money(int(amount_minor), currency)
