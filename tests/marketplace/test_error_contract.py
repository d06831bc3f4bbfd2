"""Errors in the contract: one Error schema on every error response, and a code list that cannot drift."""

from pathlib import Path

from marketplace.api import api
from marketplace.errors import error_catalogue, error_catalogue_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_docs_list_every_error_code_the_code_can_answer():
    text = DOCS.read_text()
    listed = text.split("<!-- error-codes:start -->\n", 1)[1].split("\n<!-- error-codes:end -->", 1)[0]

    assert listed == error_catalogue_markdown(), "regenerate the table: marketplace.errors.error_catalogue_markdown()"
    assert {"validation_error", "not_found", "email_taken", "invalid_event", "rate_limited"} <= {
        code for _, code, _ in error_catalogue()
    }


def test_every_error_response_in_the_document_is_the_error_schema():
    document = api.get_openapi_schema()
    error = document["components"]["schemas"]["Error"]

    assert set(error["required"]) == {"code", "detail"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {status: body for status, body in operation["responses"].items() if int(status) >= 400}
            assert 422 in {int(s) for s in errors}, f"{method.upper()} {path} does not declare 422"
            for status, body in errors.items():
                schema = body["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method.upper()} {path} {status}"
