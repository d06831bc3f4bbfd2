from decimal import Decimal

import pytest

from marketplace.money import format_money, to_major


def test_two_decimal_currency_shows_cents():
    assert format_money(150_000, "usd") == "$1,500.00"


def test_zero_decimal_currency_has_no_decimals():
    assert format_money(5_000, "jpy") == "¥5,000"


def test_three_decimal_currency_keeps_all_three():
    assert format_money(1_234, "KWD") == "KWD1.234"


def test_a_single_minor_unit_is_not_rounded_away():
    assert format_money(1, "usd") == "$0.01"


def test_negative_amounts_keep_their_sign():
    assert format_money(-150_000, "eur") == "-€1,500.00"


def test_major_units_are_exact_decimals():
    assert to_major(150_001, "usd") == Decimal("1500.01")
    assert to_major(150_001, "jpy") == Decimal(150_001)


@pytest.mark.parametrize("code", ["us", "usdx", "12$", ""])
def test_malformed_currency_codes_are_refused(code):
    with pytest.raises(ValueError, match="ISO 4217"):
        format_money(100, code)
