"""Model instances from a hand-written SELECT, for the few statements every request runs.

The ORM's Python costs more than PostgreSQL's answer on a one-row read: reading a user with both
profiles through `select_related(...).get(pk=...)` took 953 µs here, the same row through a cursor
177 µs (docs/benchmarks.md, "API speed"). The statements on every request's path are therefore
written out once, and their rows become model instances here, through the converters the ORM
applies (SQLite's naive datetimes become aware, as they do through a QuerySet). Everything else
reads through the ORM.

    user, profile = Columns(User, "u"), Columns(ClientProfile, "cp")

    @per_vendor
    def user_sql(connection):
        return (
            f"SELECT {user.select(connection)}, {profile.select(connection)} FROM {user.table(connection)}"
            f" LEFT JOIN {profile.table(connection)}"
            f" ON {profile.column(connection, 'user')} = {user.column(connection, 'id')}"
            f" WHERE {user.column(connection, 'id')} = %s"
        )

    row = cursor.fetchone()
    found = user.build(row, connection)                             # the first len(user) values
    found_profile = profile.build(row[len(user):], connection)       # None where the LEFT JOIN found nothing

A test per statement checks that it reads what the equivalent QuerySet reads.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


class Columns[M: models.Model]:
    """Every concrete column of `model`, under the table alias `alias`, in field order."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields: list[models.Field[Any, Any]] = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        # Per alias and vendor, not per connection object: each thread has its own, and a cache keyed by them
        # would keep every one alive (the converters are methods bound to their connection). What the converters
        # read of it (the alias's settings: SQLite's time zone) is the same for every thread's.
        self._converters: dict[tuple[str, str], list[tuple[int, list[Converter], Any]]] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def select(self, connection: BaseDatabaseWrapper) -> str:
        """The SELECT list for these columns: `"u"."id", "u"."email", ...` (quoted for `connection`)."""
        quote = connection.ops.quote_name
        return ", ".join(f"{quote(self.alias)}.{quote(str(field.column))}" for field in self.fields)

    def build(self, values: Sequence[Any], connection: BaseDatabaseWrapper) -> M | None:
        """The instance whose columns open `values`, as the ORM would build it; None when its primary key is NULL.

        `values` may be longer than the columns (the rest of the row is another model's). The
        instance is marked as loaded from `connection.alias`, so saving it updates the row.
        """
        converted = list(values[: len(self.fields)])
        pk_index = self.fields.index(self.model._meta.pk)
        if converted[pk_index] is None:
            return None
        for index, converters, column in self._converters_for(connection):
            value = converted[index]
            for converter in converters:
                value = converter(value, column, connection)
            converted[index] = value
        return self.model.from_db(connection.alias, self.attnames, converted)

    def _converters_for(self, connection: BaseDatabaseWrapper) -> list[tuple[int, list[Converter], Any]]:
        # The lists the SQL compiler builds for each query, worked out once per alias.
        found = self._converters.get((connection.alias, connection.vendor))
        if found is None:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if converters:
                    found.append((index, converters, column))
            self._converters[connection.alias, connection.vendor] = found
        return found

    def table(self, connection: BaseDatabaseWrapper) -> str:
        """`"table" "alias"`, for a FROM or JOIN clause."""
        quote = connection.ops.quote_name
        return f"{quote(self.model._meta.db_table)} {quote(self.alias)}"

    def column(self, connection: BaseDatabaseWrapper, name: str) -> str:
        """`"alias"."column"` of the field `name` (a field name: `user` gives its `user_id` column)."""
        quote = connection.ops.quote_name
        field = self.model._meta.get_field(name)
        if not isinstance(field, models.Field):
            raise TypeError(f"{self.model.__name__}.{name} is not a column")
        return f"{quote(self.alias)}.{quote(str(field.column))}"


def per_vendor(build: Callable[[BaseDatabaseWrapper], str]) -> Callable[[BaseDatabaseWrapper], str]:
    """`build(connection)`, a written-out statement's SQL, worked out once per database vendor."""
    built: dict[str, str] = {}

    @functools.wraps(build)
    def cached(connection: BaseDatabaseWrapper) -> str:
        if connection.vendor not in built:
            built[connection.vendor] = build(connection)
        return built[connection.vendor]

    return cached
