"""Kept only for bench/ (bench/matching_naive.py, bench/bench_matching.py), which another change owns right now.

The time-zone helpers live in `marketplace.timezones` (a shared type); the product and the tests import them from
there. Remove this module once bench/ does too.
"""

from marketplace.timezones import is_time_zone, utc_offset_minutes

__all__ = ["is_time_zone", "utc_offset_minutes"]
