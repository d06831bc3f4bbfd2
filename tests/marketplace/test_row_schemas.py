"""`RowOut`, the output schemas of list rows: pydantic's own `from_attributes`, so no `resolve_*` method ever runs."""

import pytest

from marketplace.schemas import RowOut


def test_a_row_schema_with_a_resolver_is_refused_when_it_is_defined():
    with pytest.raises(TypeError, match="resolve_title"):

        class TitledOut(RowOut):
            title: str

            @staticmethod
            def resolve_title(obj: object) -> str:
                return "never called"


def test_a_row_schema_reads_attributes_as_they_are():
    class Thing:
        id = 7
        title = "Async worker pool"

    class ThingOut(RowOut):
        id: int
        title: str

    assert ThingOut.model_validate(Thing()).model_dump() == {"id": 7, "title": "Async worker pool"}
