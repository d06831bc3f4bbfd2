"""What Stripe will charge: per-currency minimum and maximum amounts, in minor units.

Minimums are Stripe's "Minimum and maximum charge amounts"
(https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts): a charge
must convert to at least about 0.50 USD. The maximum is eight digits of minor
units (99,999,999: 999,999.99 USD); Stripe refuses anything larger
(`amount_too_large`). Currencies not listed here are not offered.
"""

from payments.errors import AmountOutOfRange

MAXIMUM_MINOR = 99_999_999

MINIMUM_MINOR: dict[str, int] = {
    "usd": 50,
    "aud": 50,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1_500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17_500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1_000,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "sek": 300,
    "sgd": 50,
}


def check_amount(amount_minor: int, currency: str) -> None:
    """Raise AmountOutOfRange unless Stripe would charge `amount_minor` of `currency` (ISO code, any case)."""
    minimum = MINIMUM_MINOR.get(currency.lower())
    if minimum is None:
        raise AmountOutOfRange(
            f"amount_minor: {currency.upper()} is not a currency Vetted charges in.", field="amount_minor"
        )
    if amount_minor < minimum:
        raise AmountOutOfRange(
            f"amount_minor: at least {minimum} {currency.upper()} minor units (Stripe's minimum).", field="amount_minor"
        )
    if amount_minor > MAXIMUM_MINOR:
        raise AmountOutOfRange(
            f"amount_minor: at most {MAXIMUM_MINOR} minor units (Stripe's maximum).", field="amount_minor"
        )
