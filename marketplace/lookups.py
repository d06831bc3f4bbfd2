"""Array lookups for SkillListField: `skills__overlap` and `skills__contains_all`.

On PostgreSQL they are the array operators `&&` and `@>`, which a GIN index
serves. On SQLite the JSON text is opened with json_each: slower, but the same
answers, so the embedded default matches exactly like production.
"""

from typing import Any

from django.db.models import Expression, Func, IntegerField, Lookup
from django.db.models.lookups import FieldGetDbPrepValueMixin

from marketplace.fields import SkillListField


class _SkillLookup(FieldGetDbPrepValueMixin, Lookup):
    postgres_operator = ""
    sqlite_template = ""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        params = [*lhs_params, *rhs_params]
        if connection.vendor == "postgresql":
            return f"{lhs} {self.postgres_operator} {rhs}::varchar(50)[]", params
        return self.sqlite_template.format(lhs=lhs, rhs=rhs), params


@SkillListField.register_lookup
class Overlap(_SkillLookup):
    lookup_name = "overlap"
    postgres_operator = "&&"
    sqlite_template = (
        "EXISTS (SELECT 1 FROM json_each({lhs}) AS a WHERE a.value IN (SELECT value FROM json_each({rhs})))"
    )


@SkillListField.register_lookup
class ContainsAll(_SkillLookup):
    lookup_name = "contains_all"
    postgres_operator = "@>"
    sqlite_template = (
        "NOT EXISTS (SELECT 1 FROM json_each({rhs}) AS b WHERE b.value NOT IN (SELECT value FROM json_each({lhs})))"
    )


class SkillHits(Func):
    """How many of `skills` the column holds: the size of the intersection."""

    output_field = IntegerField()

    def __init__(self, column: str | Expression, skills: list[str]) -> None:
        self.skills = list(skills)
        super().__init__(column)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        column, params = compiler.compile(self.source_expressions[0])
        value = SkillListField().get_db_prep_value(self.skills, connection)
        if connection.vendor == "postgresql":
            # One `= ANY` test per wanted skill: plain expressions, no subquery per row (ranking sorts on this).
            if not self.skills:
                return "0", []
            tests = " + ".join(f"COALESCE((%s = ANY({column}))::int, 0)" for _ in self.skills)
            return f"({tests})", [value for skill in self.skills for value in (skill, *params)]
        else:
            sql = f"(SELECT COUNT(*) FROM json_each({column}) AS a WHERE a.value IN (SELECT value FROM json_each(%s)))"  # noqa: S608 - {column} is compiled SQL, the skills are a parameter
        return sql, [*params, value]
