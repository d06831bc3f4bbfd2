"""Schemathesis over /api/openapi.json against a live server, as anonymous, client, engineer and staff.

`--checks all`: no 5xx, every status declared, every response matching its schema,
and invalid input refused. Left out, each for a reason:
- the check that schema-valid input is accepted: some input a JSON schema calls valid is
  refused on purpose (docs/api.md, Input rules), so its 422 is right. A cursor is an opaque
  token only we issue (`0` fits its pattern); a password must also pass Django's strength
  validators; money and counts are JSON integers, and JSON Schema calls `840.0` one. Each
  refusal has its own test (tests/marketplace/test_pagination.py, test_input_contract.py,
  tests/accounts/test_auth_api.py);
- revoking an API token: the run would revoke its own (ids are small integers) and spend the
  rest on 401s (tests/accounts covers revoking, and refusing another user's token);
- the operations that call Stripe (payout onboarding, funding and releasing money):
  without a Stripe to talk to they answer 503 by design (tests/payments/test_faults_live.py
  runs them against the Stripe double, slow and down);
- adding a rubric: its cross-field rules (unique keys, a must-have category) are more than
  a JSON schema says (tests/vetting covers them).

The Stripe webhook is not in the schema at all: only a body signed with the webhook secret is
accepted, which no schema can describe (tests/payments/test_webhooks.py covers it). Each
`time_zone` lists 597 zones; the run sees a sample (tests/marketplace/schemathesis_hooks.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import api_token_create
from tests.factories import ClientFactory, StaffFactory, vetted_engineer
from tests.processes import ROOT, asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

EXAMPLES = 5
# The coverage phase (every boundary and every missing or wrong value of every parameter and header)
# costs minutes per role; it runs as the client, who can reach the most operations, and the other
# roles run the examples and fuzzing phases, so the suite stays within its time budget.
PHASES = {"client": "examples,coverage,fuzzing,stateful"}
DEFAULT_PHASES = "examples,fuzzing,stateful"
CALLS_STRIPE = r"^/api/payments/(payout-account/onboarding|milestones/\{milestone_id\}/(fund|approve|refund|settle))$"


@pytest.mark.parametrize("role", ["anonymous", "client", "engineer", "staff"])
def test_the_api_keeps_its_openapi_contract(rubric, tmp_path: Path, role):
    user = {
        "anonymous": None,
        "client": ClientFactory.create,
        "engineer": vetted_engineer,
        "staff": StaffFactory.create,
    }[role]
    headers = []
    if user is not None:
        _, token = api_token_create(user=user(), name="schemathesis")
        headers = ["-H", f"Authorization: Bearer {token}"]

    with asgi_server(log_dir=tmp_path) as base:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/api/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                str(EXAMPLES),
                "--phases",
                PHASES.get(role, DEFAULT_PHASES),
                "--workers",
                "2",
                "--seed",
                "20261130",
                "--exclude-operation-id",
                "token_revoke",
                "--exclude-path",
                "/api/vetting/staff/rubrics",
                "--exclude-path-regex",
                CALLS_STRIPE,
                "--no-color",
                *headers,
            ],
            cwd=ROOT,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.marketplace.schemathesis_hooks"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        server_log = (tmp_path / "server.log").read_text()

    failures = run.stdout[run.stdout.find("FAILURES") :]
    assert run.returncode == 0, failures[:8000]
    assert "Traceback" not in server_log
