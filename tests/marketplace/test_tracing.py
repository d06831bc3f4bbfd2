import logging

import pytest

from marketplace.tracing import EventFormatter, RequestIdFilter, request_id

pytestmark = pytest.mark.django_db


def test_a_callers_request_id_is_kept_and_echoed(client):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 65, "new\nline"])
def test_a_missing_or_odd_request_id_is_replaced(client, sent):
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}

    response = client.get("/health/live", **headers)

    assert len(response["X-Request-ID"]) == 32
    assert response["X-Request-ID"] != sent


async def test_async_views_get_the_id_too(async_client):
    response = await async_client.get("/health/ready", headers={"X-Request-ID": "async-1"})

    assert response["X-Request-ID"] == "async-1"


def test_log_records_made_during_a_request_carry_its_id(client, caplog):
    caplog.set_level(logging.INFO, logger="accounts.services")
    caplog.handler.addFilter(RequestIdFilter())

    client.post(
        "/api/auth/register",
        {"email": "new@example.test", "password": "correct-horse-battery", "role": "client"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="trace-8",
    )

    record = next(r for r in caplog.records if r.getMessage() == "user.registered")
    assert record.request_id == "trace-8"
    assert request_id.get() is None


def test_the_formatter_writes_the_event_its_fields_and_the_id():
    record = logging.LogRecord("vetting", logging.INFO, __file__, 1, "application.moved", (), None)
    record.application_id = 7
    record.request_id = "r-1"

    line = EventFormatter("%(levelname)s %(name)s %(message)s").format(record)

    assert line == "INFO vetting application.moved application_id=7 request_id=r-1"
