"""Settings read from the environment refuse what they cannot mean, naming the variable (marketplace.env)."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from marketplace.env import env_float


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "NaN"])
def test_a_float_setting_refuses_what_is_not_a_finite_number(monkeypatch, value):
    monkeypatch.setenv("VETTED_TEST_SECONDS", value)
    with pytest.raises(
        ImproperlyConfigured, match=re.escape(f"VETTED_TEST_SECONDS must be a finite number, got '{value}'")
    ):
        env_float("VETTED_TEST_SECONDS", 1.0, minimum=0.0)


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("2.5", 2.5), ("1e3", 1000.0)])
def test_a_float_setting_reads_a_finite_number(monkeypatch, value, expected):
    monkeypatch.setenv("VETTED_TEST_SECONDS", value)
    assert env_float("VETTED_TEST_SECONDS", 1.0, minimum=0.0) == expected


def test_a_float_setting_below_its_minimum_or_not_a_number_is_refused(monkeypatch):
    monkeypatch.setenv("VETTED_TEST_SECONDS", "-0.5")
    with pytest.raises(ImproperlyConfigured, match=r"must be at least 0\.0"):
        env_float("VETTED_TEST_SECONDS", 1.0, minimum=0.0)
    monkeypatch.setenv("VETTED_TEST_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="must be a number, got 'soon'"):
        env_float("VETTED_TEST_SECONDS", 1.0, minimum=0.0)


def test_an_unset_float_setting_is_its_default(monkeypatch):
    monkeypatch.delenv("VETTED_TEST_SECONDS", raising=False)
    assert env_float("VETTED_TEST_SECONDS", 1.5) == 1.5
