"""Filters for email templates: `{{ iso_time|when }}`, `{{ status|label }}` and the money filter, loaded together."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone

from marketplace.templatetags.money import money

register = template.Library()
register.filter("money", money)


@register.filter(name="when")
def when(value: str | datetime | None) -> str:
    """An ISO 8601 time (as payloads carry it) or a datetime, for people: "Mon 5 Jan 2026, 14:00 UTC"."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment.astimezone(UTC).strftime("%a %-d %b %Y, %H:%M UTC")


@register.filter(name="label")
def label(value: str) -> str:
    """A status as people read it: "changes_requested" -> "changes requested"."""
    return str(value).replace("_", " ")
