import zoneinfo
from datetime import datetime

from django.utils import timezone


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA zone that is a place (not `localtime`, `posixrules`, `Factory`, `posix/...`)."""
    if name in {"localtime", "posixrules", "Factory"} or name.startswith(("posix/", "right/")):
        return False
    return name in zoneinfo.available_timezones()


def utc_offset_minutes(name: str, at: datetime | None = None) -> int:
    """The zone's offset from UTC now (or at `at`), in minutes: Europe/Berlin in winter is 60."""
    moment = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(name))
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0
