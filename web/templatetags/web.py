"""Filters for the web app's pages."""

from django import template

from reviews.selectors import stars as stars_of

register = template.Library()


@register.filter
def stars(rating_bp: int) -> str:
    """7_916 -> "4.2": a rating in basis points of the 1-5 scale, in stars to one decimal."""
    return f"{stars_of(int(rating_bp)):.1f}"


@register.filter
def percent(score_bp: int) -> str:
    """8_250 -> "82.5%": a score in basis points."""
    return f"{int(score_bp) / 100:.1f}%"


@register.filter
def words(name: str) -> str:
    """ "time_zone" -> "time zone": a field's name as people read it."""
    return str(name).replace("_", " ")
