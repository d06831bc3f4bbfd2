"""Money as people read it: one formatter for the admin, emails and the demo's narration.

Amounts are stored as integer minor units with an ISO 4217 currency code. How many
minor units make a major one differs by currency (USD 2, JPY 0, KWD 3), so the
conversion asks Babel's copy of the CLDR data rather than assuming 100.
"""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

DEFAULT_LOCALE = "en_US"


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of `currency`'s minor unit (ISO 4217 via CLDR): USD 2, JPY 0, KWD 3.

    Raises ValueError for a code that is not three letters.
    """
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return int(get_currency_precision(code))


def to_major(amount_minor: int, currency: str) -> Decimal:
    """`amount_minor` (an integer of minor units) as an exact Decimal of major units: 150000 USD -> 1500.00."""
    exponent = minor_unit_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent)


def format_money(amount_minor: int, currency: str, *, locale: str = DEFAULT_LOCALE) -> str:
    """`amount_minor` of `currency` for a person to read: (150000, "usd") -> "$1,500.00", (5000, "jpy") -> "¥5,000".

    The amount keeps exactly the currency's own decimal places (CLDR), never rounded.
    Raises ValueError for a malformed currency code.
    """
    code = currency.upper()
    return str(format_currency(to_major(amount_minor, code), code, locale=locale, currency_digits=True))
