"""The OpenAPI document is a contract a generated client can lean on: typed, complete, and clean."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

OURS = {"accounts", "conversations", "hiring_requests", "marketplace", "payments", "vetting"}
ENUM_PROPERTIES = {"status", "role", "level", "kind", "currency", "rate_kind", "budget_kind", "min_level", "to_status"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The concrete schemas behind `schema`: through $ref, anyOf/oneOf/allOf and arrays' items."""
    if "$ref" in schema:
        return _resolve(document, document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return [found for part in schema[combinator] for found in _resolve(document, part)]
    if schema.get("type") == "array" and "items" in schema:
        return _resolve(document, schema["items"])
    return [schema]


def test_every_operation_declares_its_error_statuses_with_the_error_schema(document):
    for path, method, operation in _operations(document):
        errors = {int(status): body for status, body in operation["responses"].items() if int(status) >= 400}
        assert {422, 503} <= set(errors), (method, path)
        if "{" in path:
            assert 404 in errors, (method, path)
        if operation.get("security"):
            assert {401, 403} <= set(errors), (method, path)
        for status, body in errors.items():
            assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                method,
                path,
                status,
            )


def test_every_closed_set_is_an_enum(document):
    loose = []
    for name, schema in document["components"]["schemas"].items():
        for prop, definition in schema.get("properties", {}).items():
            if prop not in ENUM_PROPERTIES:
                continue
            concrete = [s for s in _resolve(document, definition) if s.get("type") != "null"]
            if not concrete or any("enum" not in s and "const" not in s for s in concrete):
                loose.append(f"{name}.{prop}")
    assert loose == []


def test_no_output_is_a_bare_free_form_object(document):
    bare = []
    for name, schema in document["components"]["schemas"].items():
        if name.endswith("In") or name == "Error":
            continue
        for prop, definition in schema.get("properties", {}).items():
            for concrete in _resolve(document, definition):
                if concrete.get("type") == "object" and not concrete.get("properties"):
                    extra = concrete.get("additionalProperties")
                    if extra in (None, True, {}):
                        bare.append(f"{name}.{prop}")
    assert bare == []


def test_every_schema_is_referenced_from_an_operation(document):
    schemas = document["components"]["schemas"]
    reached: set[str] = set()
    frontier = list(_refs(document["paths"]))
    while frontier:
        name = frontier.pop()
        if name in reached:
            continue
        reached.add(name)
        frontier += list(_refs(schemas[name]))
    assert sorted(set(schemas) - reached) == []


def test_operation_ids_are_clean_and_unique(document):
    ids = [operation["operationId"] for _, _, operation in _operations(document)]

    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", operation_id) for operation_id in ids), ids
    assert not [operation_id for operation_id in ids if "_api_" in operation_id or operation_id.endswith("_view")]


def test_the_stripe_webhook_is_not_a_client_operation(document):
    assert not [path for path in document["paths"] if "webhook" in path]


def test_the_clock_gives_times_as_times(document):
    clock = document["components"]["schemas"]["ClockOut"]["properties"]

    assert clock["as_of"]["format"] == "date-time"
    assert "now" not in clock
    assert clock["summary"]["type"] == "string"


def test_the_security_schemes_say_how_to_authenticate(document):
    schemes = document["components"]["securitySchemes"]

    assert set(schemes) == {"TokenAuth", "SessionAuth"}
    assert all(scheme.get("description") for scheme in schemes.values())


def test_no_two_schemas_share_a_name():
    """ninja keeps one of two classes with one name, so an operation could be documented with the other's shape."""
    from pydantic import BaseModel

    from marketplace.api import api

    seen: dict[str, set[type]] = {}

    def walk(model: Any) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return
        if model.__module__.split(".")[0] not in OURS:
            # ninja's own wrappers (BodyParams, NinjaResponseSchema): look inside, don't count.
            for field in model.model_fields.values():
                for inner in _types_in(field.annotation):
                    walk(inner)
            return
        classes = seen.setdefault(model.__name__, set())
        if model in classes:
            return
        classes.add(model)
        for field in model.model_fields.values():
            for inner in _types_in(field.annotation):
                walk(inner)

    for _, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.response_models.values():
                    walk(model)
                for model in operation.models:
                    walk(model)
    assert {name: classes for name, classes in seen.items() if len(classes) > 1} == {}


def _types_in(annotation: Any) -> Iterator[Any]:
    from typing import get_args

    yield annotation
    for argument in get_args(annotation):
        yield from _types_in(argument)


def test_the_http_of_the_docs_is_declared(document):
    me = document["paths"]["/api/me"]["get"]
    requests = document["paths"]["/api/requests"]["get"]
    tokens = document["paths"]["/api/auth/tokens"]["post"]

    assert "If-None-Match" in [p["name"] for p in me["parameters"]]
    assert "304" in me["responses"]
    assert "ETag" in me["responses"]["200"]["headers"]
    assert {"ETag", "Link"} <= set(requests["responses"]["200"]["headers"])
    assert "Link" not in me["responses"]["200"]["headers"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(tokens["responses"]["201"]["headers"])
    assert "Retry-After" in tokens["responses"]["429"]["headers"]
    assert "RateLimit-Limit" not in me["responses"]["200"]["headers"]
