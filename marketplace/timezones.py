import zoneinfo
from datetime import datetime

from django.utils import timezone

# The IANA zones that are places: not `localtime`, `posixrules`, `Factory`, nor the `posix/` and `right/` copies.
# Read once: `available_timezones()` walks the tz database's files on every call (about 19 ms), and the
# database does not change under a running process.
PLACES: frozenset[str] = frozenset(
    zone
    for zone in zoneinfo.available_timezones()
    if zone not in {"localtime", "posixrules", "Factory"} and not zone.startswith(("posix/", "right/"))
)


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA zone that is a place (`PLACES`), such as Europe/Berlin."""
    return name in PLACES


def utc_offset_minutes(name: str, at: datetime | None = None) -> int:
    """The zone's offset from UTC now (or at `at`), in minutes: Europe/Berlin in winter is 60."""
    moment = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(name))
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0
