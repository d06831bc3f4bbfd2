import zoneinfo
from datetime import datetime

from django.utils import timezone


def is_time_zone(name: str) -> bool:
    return name in zoneinfo.available_timezones()


def utc_offset_minutes(name: str, at: datetime | None = None) -> int:
    """The zone's offset from UTC now (or at `at`), in minutes: Europe/Berlin in winter is 60."""
    moment = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(name))
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0
