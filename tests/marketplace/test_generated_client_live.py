"""An integrator's view: a client generated from the live OpenAPI document walks the whole story.

openapi-python-client generates a typed package from `/api/openapi.json` served by a
live uvicorn; the staff, a client and two engineers then act through that package
alone, with no hand-written request to our API. Two calls are not ours: the engineer
finishing Stripe's hosted onboarding page and Stripe.js confirming the card in the
client's browser, both at the Stripe double. Errors come back typed: for each status
family the test reads the stable `code` from the parsed `Error` object.
"""

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from django.conf import global_settings
from django.core.management import call_command

from dev_tools.demo import DEMO_PASSWORD
from tests.processes import answers, celery_worker, current_database_url, free_port, needs_redis, running, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the worker that matches takes its tasks from the Redis broker"),
]

DOUBLE_KEY = {"Authorization": "Bearer sk_test_double"}
PACKAGE = "vetted_generated_client"


class Generated:
    """The generated package, with its operations found by operation id."""

    def __init__(self, root: Path, base_url: str) -> None:
        sys.path.insert(0, str(root))
        self.package = importlib.import_module(PACKAGE)
        self.base_url = base_url
        self.modules: dict[str, ModuleType] = {}
        for path in (root / PACKAGE / "api").glob("*/*.py"):
            if path.name != "__init__.py":
                module = importlib.import_module(f"{PACKAGE}.api.{path.parent.name}.{path.stem}")
                self.modules[path.stem] = module

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{PACKAGE}.models"), name)

    def op(self, operation_id: str) -> ModuleType:
        (module,) = [m for stem, m in self.modules.items() if stem == operation_id or stem.endswith(f"_{operation_id}")]
        return module

    def operation_ids(self) -> list[str]:
        return sorted(self.modules)

    def anonymous(self) -> Any:
        return self.package.Client(base_url=self.base_url, timeout=httpx.Timeout(30))

    def as_user(self, token: str) -> Any:
        return self.package.AuthenticatedClient(base_url=self.base_url, token=token, timeout=httpx.Timeout(30))

    def call(self, operation_id: str, *, client: Any, expect: int = 200, **kwargs: Any) -> Any:
        """Run one operation; assert its status; return what the generated code parsed."""
        response = self.op(operation_id).sync_detailed(client=client, **kwargs)
        assert response.status_code == expect, (operation_id, response.status_code, response.content)
        assert response.parsed is not None, (operation_id, response.content)
        return response.parsed


def generate(document_url: str, out: Path) -> str:
    """Generate the package from the live document; returns the generator's output."""
    document = out / "openapi.json"
    document.write_bytes(httpx.get(document_url, timeout=30).content)
    config = out / "config.yaml"
    # Literal enums: time zone names such as GMT+0 and GMT-0 make the same Python identifier.
    config.write_text(f"package_name_override: {PACKAGE}\nliteral_enums: true\npost_hooks: []\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # With --meta none the package is the output directory itself: put it where it imports from.
    return result.stdout + result.stderr


@pytest.fixture
def stack(rubric, tmp_path: Path, settings) -> Iterator[tuple[str, str]]:
    """The server, a worker with beat and the Stripe double, on the test database; yields both base URLs."""
    # The server checks passwords with the production hashers; seed with those.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    call_command("seed_demo")
    server_port, stripe_port, queue = free_port(), free_port(), f"gen-{uuid.uuid4().hex[:8]}"
    base, stripe_base = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{stripe_port}"
    env = {
        "DATABASE_URL": current_database_url(),
        "CELERY_QUEUE": queue,
        "STRIPE_API_BASE": stripe_base,
        # Small, so the 429 is reached in a few calls.
        "RATE_LIMIT_TOKEN_CREATE": "8/60",
    }
    with (
        running(
            [
                "manage.py",
                "stripe_double",
                "--port",
                str(stripe_port),
                "--webhook-url",
                f"{base}/api/payments/stripe/webhook",
            ],
            env=env,
            log=tmp_path / "stripe.log",
        ),
        running(
            ["-m", "uvicorn", "marketplace.asgi:application", "--port", str(server_port)],
            env=env,
            log=tmp_path / "server.log",
        ),
        celery_worker(queue=queue, log_dir=tmp_path, beat=True, env=env),
    ):
        wait_until(lambda: answers(f"{base}/health/ready"), timeout=60, what="the server")
        wait_until(
            lambda: answers(f"{stripe_base}/v1/events", headers=DOUBLE_KEY), timeout=30, what="the Stripe double"
        )
        yield base, stripe_base


def test_a_generated_client_walks_the_story_and_reads_typed_errors(stack, tmp_path):
    base, stripe_base = stack
    output = generate(f"{base}/api/openapi.json", tmp_path)
    assert "warning" not in output.lower(), output
    api = Generated(tmp_path, base)
    model = api.model
    run = uuid.uuid4().hex[:6]

    def login(email: str, password: str = DEMO_PASSWORD) -> Any:
        made = api.call(
            "token_create",
            client=api.anonymous(),
            expect=201,
            body=model("TokenCreateIn").from_dict({"email": email, "password": password, "name": f"gen {run}"}),
        )
        return api.as_user(made.token)

    staff, lead, client = login("staff@vetted.test"), login("lead@vetted.test"), login("client@vetted.test")

    # Two engineers register as programs do: JSON, no cookies, no CSRF.
    engineers = []
    for name, skills in (("Grace", ["python", "asyncio"]), ("Edsger", ["python", "postgresql"])):
        email, password = f"{name.lower()}-{run}@vetted.test", "generated-client-pass-2026"
        account = {"email": email, "password": password, "role": "engineer", "full_name": name}
        api.call("register", client=api.anonymous(), expect=201, body=model("RegisterIn").from_dict(account))
        engineer = login(email, password)
        me = api.call("me", client=engineer)
        api.call(
            "engineer_profile_update",
            client=engineer,
            profile_id=me.engineer_profile.id,
            body=model("EngineerProfileIn").from_dict(
                {
                    "headline": "Async Python engineer",
                    "skills": [*skills, f"gen-{run}"],
                    "hourly_rate_minor": 9_000,
                    "weekly_hours_available": 30,
                    "time_zone": "Europe/London",
                    "years_experience": 8,
                }
            ),
        )
        engineers.append((engineer, me.id))

    # Vetting against the rubric; the interviewer does not approve (four eyes).
    for engineer, _ in engineers:
        application = api.call(
            "application_submit",
            client=engineer,
            expect=201,
            body=model("ApplicationIn").from_dict({"statement": "I have run asyncio services for years.", "links": []}),
        )
        ops = {"application_id": application.id}
        api.call("staff_screen", client=staff, **ops, body=model("NoteIn").from_dict({"note": "CV fits"}))
        interview = api.call("staff_interview", client=staff, **ops, body=model("InterviewIn").from_dict({}))
        scores = [{"criterion_id": s.criterion_id, "value": 4, "note": "gen"} for s in interview.scores]
        api.call("staff_score", client=staff, **ops, body=model("ScoresIn").from_dict({"scores": scores}))
        api.call("staff_approve", client=lead, **ops, body=model("NoteIn").from_dict({"note": "Welcome"}))
        assert api.call("my_status", client=engineer).level

    # The client raises a request; the worker matches and invites both.
    draft = api.call(
        "request_create",
        client=client,
        expect=201,
        body=model("RequestIn").from_dict(
            {
                "title": "Async payments service",
                "description": "An asyncio service that talks to Stripe.",
                "required_skills": ["python", f"gen-{run}"],
                "nice_to_have_skills": [],
                "min_level": "mid",
                "budget_kind": "hourly",
                "budget_minor": 10_000,
                "currency": "usd",
                "hours_per_week": 20,
                "time_zone": "Europe/London",
                "min_overlap_hours": 2,
                "start_date": "2099-01-04",
            }
        ),
    )
    raised = api.call("request_raise", client=client, request_id=draft.id)
    assert raised.status == "open"
    for engineer, _ in engineers:

        def invited(engineer: Any = engineer) -> bool:
            return bool(api.call("my_invitations", client=engineer).items)

        wait_until(invited, timeout=60, what="the worker's invitations")
        invitation = api.call("my_invitations", client=engineer).items[0]
        api.call(
            "invitation_accept", client=engineer, invitation_id=invitation.id, body=model("AcceptIn").from_dict({})
        )
    shortlist = api.call("request_shortlist", client=client, request_id=draft.id, limit=1)
    rest = api.call("request_shortlist", client=client, request_id=draft.id, cursor=shortlist.next_cursor)
    assert len(shortlist.items) + len(rest.items) == 2
    assert (shortlist.has_more, rest.has_more) == (True, False)

    # Chat, then the hire.
    (grace, grace_id), _ = engineers
    conversation = next(c for c in api.call("my_conversations", client=client).items if c.engineer_id == grace_id)
    api.call(
        "conversation_send",
        client=client,
        expect=201,
        conversation_id=conversation.id,
        body=model("MessageIn").from_dict({"body": "How would you bound concurrency?", "client_msg_id": f"gen-{run}"}),
    )
    said = api.call("conversation_messages", client=grace, conversation_id=conversation.id)
    assert said.items[-1].body == "How would you bound concurrency?"
    onboarding = api.call(
        "payout_onboarding", client=grace, body=model("OnboardingIn").from_dict({"return_url": f"{base}/"})
    )
    finished = httpx.get(onboarding.url, timeout=10)  # the engineer at Stripe's hosted page
    assert (finished.status_code, finished.headers["location"]) == (302, f"{base}/")  # sent back, as Stripe does
    wait_until(lambda: api.call("payout_account", client=grace).payouts_enabled, timeout=30, what="account.updated")
    engagement = api.call(
        "request_hire",
        client=client,
        expect=201,
        request_id=draft.id,
        body=model("HireIn").from_dict({"engineer_id": grace_id}),
    )

    # Escrow: fund, confirm at "Stripe", submit, approve, released.
    milestone = api.call(
        "milestone_create",
        client=client,
        expect=201,
        engagement_id=engagement.id,
        body=model("MilestoneIn").from_dict(
            {"title": "Worker pool", "amount_minor": 150_000, "due_date": "2099-02-01"}
        ),
    )
    fund = api.op("milestone_fund")
    first = fund.sync_detailed(client=client, milestone_id=milestone.id, idempotency_key=f"fund-{run}")
    retried = fund.sync_detailed(client=client, milestone_id=milestone.id, idempotency_key=f"fund-{run}")
    assert (first.status_code, retried.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in first.headers
    assert retried.headers["Idempotent-Replayed"] == "true"
    funding = first.parsed
    assert retried.parsed.payment_intent_id == funding.payment_intent_id
    httpx.post(
        f"{stripe_base}/v1/payment_intents/{funding.payment_intent_id}/confirm",
        data={"payment_method": "pm_card_visa"},
        headers=DOUBLE_KEY,
        timeout=10,
    ).raise_for_status()  # what Stripe.js does in the client's browser
    wait_until(
        lambda: api.call("milestone_detail", client=client, milestone_id=milestone.id).status == "funded",
        timeout=30,
        what="payment_intent.succeeded",
    )
    api.call(
        "milestone_submit", client=grace, milestone_id=milestone.id, body=model("NoteIn").from_dict({"note": "Done"})
    )
    released = api.call("milestone_approve", client=client, milestone_id=milestone.id, idempotency_key=f"ok-{run}")
    assert released.status == "released"
    assert released.transfer_id

    # Errors, typed: the parsed object is the `Error` schema, and its code is stable.
    def error(operation_id: str, status: int, **kwargs: Any) -> Any:
        parsed = api.call(operation_id, expect=status, **kwargs)
        assert type(parsed).__name__ in {"Error", "ErrorOut"}, type(parsed)
        return parsed

    assert error("me", 401, client=api.anonymous()).code == "not_authenticated"
    assert error("milestone_detail", 404, client=grace, milestone_id=999_999_999).code == "milestone_not_found"
    assert error("request_raise", 409, client=client, request_id=draft.id).code == "request_state_conflict"
    refused = error(
        "request_create",
        422,
        client=client,
        body=model("RequestIn").from_dict({**draft.to_dict(), "budget_minor": -1, "start_date": "2099-01-04"}),
    )
    assert refused.code == "validation_error"
    assert [e.field for e in refused.errors] == ["budget_minor"]
    wrong = model("TokenCreateIn").from_dict({"email": "client@vetted.test", "password": "wrong-password", "name": "x"})
    # The limit is 8 a minute per address. A window may end during the story (each caller's windows
    # start at their own offset), so attempts go on until the limit answers: at most two windows' worth.
    statuses = []
    for _ in range(17):
        statuses.append(api.op("token_create").sync_detailed(client=api.anonymous(), body=wrong))
        if statuses[-1].status_code == 429:
            break
    assert {r.status_code for r in statuses[:-1]} == {401}
    assert statuses[0].parsed.code == "invalid_credentials"
    limited = statuses[-1]
    assert limited.status_code == 429
    assert limited.parsed.code == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
