"""The API's one pagination: limit and offset, both bounded.

ninja's LimitOffsetPagination bounds the limit but not the offset, so an offset of
2**63 reached PostgreSQL and failed there (a 500). Here both are checked first: a
limit of 1 to NINJA_PAGINATION_MAX_LIMIT and an offset of 0 to
NINJA_PAGINATION_MAX_OFFSET, or a 422.
"""

from django.conf import settings
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination


class BoundedLimitOffset(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(settings.NINJA_PAGINATION_PER_PAGE, ge=1, le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=settings.NINJA_PAGINATION_MAX_OFFSET)
