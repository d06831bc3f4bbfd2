"""Log lines carry the request id, even Django's own 500 line; JSON logs parse; errors reach Sentry tagged."""

import io
import json
import logging
from typing import Any

import pytest
import sentry_sdk
from django.test import Client

from marketplace import error_reports
from marketplace.tracing import EventFormatter, JsonEventFormatter, RequestIdFilter, request_id


@pytest.fixture
def captured() -> Any:
    """Every record Django's request logger writes, formatted both ways."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonEventFormatter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_a_500s_log_line_carries_its_request_id(captured, db, monkeypatch):
    from accounts import api as accounts_api

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(accounts_api, "_me", broken)
    client = Client(raise_request_exception=False)
    from tests.factories import ClientFactory

    client.force_login(ClientFactory.create())

    response = client.get("/api/me", HTTP_X_REQUEST_ID="req-500-abc")

    assert response.status_code == 500
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors, lines
    assert {line["request_id"] for line in errors} == {"req-500-abc"}


def test_json_lines_have_the_fields_a_log_pipeline_reads():
    record = logging.LogRecord("vetting", logging.INFO, __file__, 1, "application.moved", (), None)
    record.application_id = 7
    token = request_id.set("r-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)

    line = json.loads(JsonEventFormatter().format(record))

    assert line["event"] == "application.moved"
    assert (line["level"], line["logger"], line["request_id"], line["application_id"]) == ("INFO", "vetting", "r-1", 7)
    assert line["time"].endswith("+00:00")
    text = EventFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert text == "INFO vetting application.moved application_id=7 request_id=r-1"


def test_without_a_dsn_nothing_is_reported():
    assert error_reports.init_error_reports(dsn=None, environment="test") is False
    assert error_reports.init_error_reports(dsn="", environment="test") is False


def test_a_report_is_tagged_with_the_request_id():
    sent: list[Any] = []

    class Capture(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: Any) -> None:
            sent.append(envelope)

    started = error_reports.init_error_reports(
        dsn="https://public@sentry.invalid/1", environment="test", transport=Capture
    )
    token = request_id.set("req-sentry-1")
    try:
        try:
            raise ValueError("reported")
        except ValueError:
            sentry_sdk.capture_exception()
        sentry_sdk.flush(timeout=5)
    finally:
        request_id.reset(token)
        sentry_sdk.init(dsn=None)  # back to reporting nothing, for the rest of the run

    assert started is True
    events = [item.payload.json for envelope in sent for item in envelope.items if item.type == "event"]
    assert len(events) == 1
    assert events[0]["tags"]["request_id"] == "req-sentry-1"
    assert events[0]["environment"] == "test"
