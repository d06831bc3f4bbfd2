"""One registry of notification kinds, and every kind the code sends is in it with both email parts."""

import ast
from pathlib import Path

import pytest
from django.template.loader import get_template

from marketplace.notifications.kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]
SENDERS = {"notify_user", "alert_staff"}


def _events(node: ast.expr) -> list[str]:
    """The event names an `event=` argument can take: a literal, or either branch of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _events(node.body) + _events(node.orelse)
    raise AssertionError(f"line {node.lineno}: name the event literally, so the registry test can read it")


def kinds_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in {".venv", "tests", "bench"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            event = next((k.value for k in node.keywords if k.arg == "event"), None)
            if name not in SENDERS or event is None or isinstance(event, ast.Name | ast.Attribute):
                continue  # passed through (alert_staff, reminders): read at their callers and registrations
            for kind in _events(event):
                found[kind] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_kind_the_code_sends_is_in_the_registry():
    in_code = kinds_in_code()

    missing = {kind: where for kind, where in in_code.items() if kind not in KINDS}
    assert missing == {}
    assert len(in_code) >= 30


def test_every_registered_kind_is_sent_somewhere_or_is_a_reminder():
    from marketplace.notifications.reminders import REMINDERS

    sent = set(kinds_in_code()) | {reminder.kind for reminder in REMINDERS}

    assert set(KINDS) - sent == set()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_a_text_and_an_html_part(name):
    template = f"email/{KINDS[name].template}.html"

    assert get_template(f"{template}#text")
    assert get_template(f"{template}#html")


def test_money_and_security_are_essential():
    assert KINDS["api_token.created"].always_essential
    assert KINDS["timesheet.changed"].is_essential({"status": "charge_failed"})
    assert not KINDS["timesheet.changed"].is_essential({"status": "submitted"})
    assert KINDS["billing.changed"].is_essential({"status": "paused"})
    assert not KINDS["billing.changed"].is_essential({"status": "active"})
    assert not KINDS["invitation.created"].is_essential({})


def test_docs_list_every_kind_as_the_registry_has_it():
    from marketplace.notifications.kinds import kinds_markdown

    text = (ROOT / "docs" / "notifications.md").read_text()
    listed = text.split("<!-- kinds:start -->\n", 1)[1].split("\n<!-- kinds:end -->", 1)[0]

    assert listed == kinds_markdown(), "regenerate the table: marketplace.notifications.kinds.kinds_markdown()"
