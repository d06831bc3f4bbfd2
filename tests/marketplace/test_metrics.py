"""/metrics: the families operations and the 8-hour promise need, for insiders only; rules name only those."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from payments.models import LedgerAccountKind
from tests.factories import ClientFactory, LedgerAccountFactory
from tests.hiring_requests.conftest import raised

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {
    "vetted_http_request_duration_seconds",
    "vetted_db_pool_in_use",
    "vetted_db_pool_waiting",
    "vetted_db_pool_timeouts",
    "vetted_stripe_call_duration_seconds",
    "vetted_stripe_breaker_open",
    "vetted_celery_queue_depth",
    "vetted_celery_task_duration_seconds",
    "vetted_websockets_open",
    "vetted_chat_delivery_seconds",
    "vetted_event_loop_lag_seconds",
    "vetted_raise_to_first_invitation_seconds",
    "vetted_requests_at_risk",
    "vetted_deadline_breaches",
    "vetted_milestones_awaiting_release",
    "vetted_escrow_held_minor",
}


def _scrape(**headers: Any) -> tuple[int, str]:
    response = Client(**headers).get("/metrics")
    return response.status_code, response.content.decode()


def _exported(text: str) -> set[str]:
    # A counter's samples and TYPE line say `_total`; its family does not.
    return {re.sub(r"_total$", "", name) for name in re.findall(r"^# TYPE (\S+) ", text, flags=re.M)}


# Committed rows: the scrape reads the database from a thread of its own, as it does in production.
@pytest.mark.django_db(transaction=True)
def test_metrics_show_the_promise_and_the_plumbing_to_an_insider():
    client = ClientFactory.create()
    raised(client)
    LedgerAccountFactory.create(kind=LedgerAccountKind.ESCROW, currency="eur", balance=12_345)
    browser = Client()
    browser.force_login(client)
    browser.get("/api/me")

    status, text = _scrape()

    assert status == 200
    assert FAMILIES - {"vetted_celery_queue_depth"} <= _exported(text)
    assert re.search(
        r'^vetted_http_request_duration_seconds_count\{method="GET",route="/api/me",status="200"\} [1-9]', text, re.M
    )
    assert re.search(r'^vetted_escrow_held_minor\{currency="eur"\} 12345\.0$', text, re.M)
    assert re.search(r"^vetted_requests_at_risk [0-9.]+$", text, re.M)


@pytest.mark.django_db
def test_metrics_refuse_an_outsider_unless_they_hold_the_token(settings):
    settings.METRICS_TOKEN = "metrics-secret-1"

    outsider, _ = _scrape(REMOTE_ADDR="203.0.113.9")
    wrong, _ = _scrape(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    holder, text = _scrape(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer metrics-secret-1")

    assert (outsider, wrong, holder) == (404, 404, 200)
    assert "vetted_requests_at_risk" in text


def test_the_alert_rules_parse_and_name_only_exported_metrics():
    rules = yaml.safe_load((ROOT / "docs" / "ops" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = set(re.findall(r"\bvetted_[a-z_]+", " ".join(expressions)))
    # A histogram exports _bucket/_count/_sum and a counter _total under its family's name.
    families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in named}

    assert expressions
    assert families <= FAMILIES, families - FAMILIES
    assert {
        "vetted_requests_at_risk",
        "vetted_stripe_breaker_open",
        "vetted_db_pool_waiting",
        "vetted_celery_queue_depth",
        "vetted_event_loop_lag_seconds",
    } <= families


def test_the_dashboard_graphs_only_exported_metrics():
    dashboard = json.loads((ROOT / "docs" / "ops" / "grafana-dashboard.json").read_text())
    expressions = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    families = {
        re.sub(r"_(bucket|count|sum|total)$", "", name) for name in re.findall(r"\bvetted_[a-z_]+", expressions)
    }

    assert families == FAMILIES
