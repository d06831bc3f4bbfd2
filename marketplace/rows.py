"""Model instances from a hand-written SELECT, for the few statements every request runs.

The ORM's Python costs more than PostgreSQL's answer on a one-row read: building and compiling
`User.objects.select_related("client_profile", "engineer_profile").get(pk=...)` takes about
0.8 ms, the database 0.1 ms (docs/benchmarks.md, "API speed"). The statements that run on every
authenticated request are therefore written out once, and their rows become model instances here,
through the same converters the ORM applies (SQLite's naive datetimes become aware, as they do
through a QuerySet). Everything else reads through the ORM.

    user = Columns(User, "u")
    profile = Columns(ClientProfile, "cp")
    sql = f"SELECT {user.select(connection)}, {profile.select(connection)} FROM ... u LEFT JOIN ... cp ..."
    row = cursor.fetchone()
    found_user = user.build(row, connection)            # the first len(user) values
    found_profile = profile.build(row[len(user):], connection)   # None where the LEFT JOIN found nothing

A test per statement checks that it reads what the equivalent QuerySet reads.
"""

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
        self._converters: dict[str, list[tuple[int, list[Converter], Any]]] = {}
        self._select: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def select(self, connection: BaseDatabaseWrapper) -> str:
        """The SELECT list for these columns: `"u"."id", "u"."email", ...` (quoted for `connection`)."""
        if connection.vendor not in self._select:
            quote = connection.ops.quote_name
            listed = ", ".join(f"{quote(self.alias)}.{quote(str(field.column))}" for field in self.fields)
            self._select[connection.vendor] = listed
        return self._select[connection.vendor]

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
        # Worked out once per connection alias: the same lists the SQL compiler builds for each query.
        if connection.alias not in self._converters:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if converters:
                    found.append((index, converters, column))
            self._converters[connection.alias] = found
        return self._converters[connection.alias]
