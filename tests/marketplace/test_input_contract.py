"""The input contract, generated from the schemas: every writable field of every input schema refuses bad input.

Cases are not written by hand: the test walks every `StrictIn` subclass the API
uses, reads each field's annotation, and sends it the bad values its kind must
refuse (NUL and lone surrogates for text, strings and booleans and floats for
integers, null for lists, out-of-range dates). Each must fail on that field.
"""

import datetime
import types
import typing
from typing import Any

import pytest
from django.test import Client
from pydantic import BaseModel, ValidationError

from marketplace.api import api
from marketplace.schemas import PatchIn, StrictIn


def _input_schemas() -> list[type[StrictIn]]:
    found: set[type[StrictIn]] = set()
    for _, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.models:
                    for field in model.model_fields.values():
                        annotation = field.annotation
                        if isinstance(annotation, type) and issubclass(annotation, StrictIn):
                            found.add(annotation)
    return sorted(found, key=lambda schema: schema.__name__)


def _walk(annotation: Any) -> list[Any]:
    """The concrete types inside an annotation (Optional, Annotated and lists unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _walk(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _walk(arg) if t is not type(None)]
    return [annotation]


def _cases(schema: type[BaseModel]) -> list[tuple[str, str, Any]]:
    cases: list[tuple[str, str, Any]] = []
    for name, field in schema.model_fields.items():
        for kind in _walk(field.annotation):
            origin = typing.get_origin(kind)
            if kind is str:
                cases += [(name, "NUL", "a\x00b"), (name, "lone surrogate", "a\ud800b")]
            elif kind is int:
                cases += [(name, "numeric string", "100"), (name, "boolean", True), (name, "float", 100.5)]
            elif kind is datetime.date:
                cases += [(name, "date too early", "1900-01-01"), (name, "date too late", "9999-12-31")]
            elif origin is list:
                (item,) = typing.get_args(kind) or (Any,)
                cases.append((name, "null list", None))
                if _walk(item) == [str]:
                    cases += [(name, "NUL in a list", ["ok", "a\x00b"]), (name, "surrogate in a list", ["\udfff"])]
    return cases


SCHEMAS = _input_schemas()
CASES = [(schema, *case) for schema in SCHEMAS for case in _cases(schema)]


def test_the_walk_finds_the_api_s_input_schemas():
    names = {schema.__name__ for schema in SCHEMAS}

    assert {"RegisterIn", "RequestIn", "RequestPatch", "MilestoneIn", "MessageIn", "ApplicationIn"} <= names
    assert len(CASES) > 100


@pytest.mark.parametrize(
    ("schema", "field", "what", "value"), CASES, ids=[f"{c[0].__name__}.{c[1]}-{c[2]}" for c in CASES]
)
def test_every_writable_field_refuses_bad_input(schema, field, what, value):
    with pytest.raises(ValidationError) as refused:
        schema.model_validate({field: value})

    errors = refused.value.errors()
    on_the_field = [e for e in errors if e["loc"][:1] == (field,) and e["type"] != "missing"]
    on_the_body = [e for e in errors if e["loc"] == () and field in str(e.get("msg", ""))]  # PatchIn's null rule
    assert on_the_field or on_the_body, f"{schema.__name__}.{field} took {what}: {errors}"


def test_every_body_schema_is_a_strict_input_and_every_partial_update_refuses_null():
    patches = [schema for schema in SCHEMAS if "Patch" in schema.__name__ or "Profile" in schema.__name__]

    assert all(issubclass(schema, StrictIn) for schema in SCHEMAS)
    assert patches
    assert all(issubclass(schema, PatchIn) for schema in patches)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a\x00@example.test", "password": "x", "name": "n"}, "email"),
        ({"email": "\ud800@example.test", "password": "x", "name": "n"}, "email"),
        ({"email": "ok@example.test", "password": "x", "name": "\x00"}, "name"),
        ({"email": "ok@example.test", "password": "x", "name": "\udc00"}, "name"),
    ],
)
def test_over_http_bad_text_is_a_422_naming_the_field(body, field):
    response = Client().post("/api/auth/tokens", body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith(f"{field}:")


def test_every_listed_time_zone_is_accepted():
    """The schema's `time_zone` enum and the validator agree: the contract run sends only a sample of the 597
    (tests/marketplace/schemathesis_hooks.py), so each is checked here."""
    from pydantic import TypeAdapter

    from marketplace.schemas import TimeZoneName

    schema = api.get_openapi_schema()["components"]["schemas"]
    listed = {
        name: fields["properties"]["time_zone"]["enum"]
        for name, fields in schema.items()
        if "enum" in fields.get("properties", {}).get("time_zone", {})
    }
    zone = TypeAdapter(TimeZoneName)

    assert set(listed) >= {"RequestIn", "RequestPatch", "ClientProfileIn", "EngineerProfileIn"}
    for names in listed.values():
        assert len(names) > 500
        assert [zone.validate_python(name) for name in names] == names
    with pytest.raises(ValidationError):
        zone.validate_python("Mars/Olympus_Mons")
