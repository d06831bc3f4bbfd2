"""The whole story, told through the public API by its actors: staff, a client, two engineers.

`manage.py demo` runs it against a running server and narrates each step; the
end-to-end test runs the same steps against live processes and checks what
each actor was told. Every step is an HTTP call a real client could make; the
only call that is not ours is the card confirmation, which Stripe.js would make
in the client's browser (here: against the Stripe double).
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from marketplace.money import format_money

DEMO_PASSWORD = "vetted-demo-pass"  # noqa: S105 - the demo accounts' published password
STRONG_PASSWORD = "engineer-demo-pass-2026"  # noqa: S105 - for the engineers the story registers


class StoryError(RuntimeError):
    """A step of the story could not be carried out; the message says which and why."""


@dataclass
class Actor:
    name: str
    email: str
    http: httpx.Client
    user_id: int = 0

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise StoryError(f"{self.name}: {method} {path} -> {response.status_code} {response.text}")
        return response.json() if response.content else None


@dataclass
class Story:
    base_url: str
    stripe_base: str
    say: Callable[[str], None] = print
    wait_seconds: float = 30.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    timings: dict[str, float] = field(default_factory=dict)

    # --- helpers ---------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=20)

    def login(self, name: str, email: str, password: str = DEMO_PASSWORD) -> Actor:
        http = self._client()
        response = http.post(
            "/api/auth/tokens", json={"email": email, "password": password, "name": f"demo {self.run_id}"}
        )
        if response.status_code != 201:
            raise StoryError(f"{name} could not log in: {response.text} (did `make run` seed the demo users?)")
        http.headers["Authorization"] = f"Bearer {response.json()['token']}"
        actor = Actor(name, email, http)
        actor.user_id = actor.call("GET", "/api/me")["id"]
        return actor

    def register_engineer(self, name: str, skills: list[str], rate: int, zone: str) -> Actor:
        email = f"{name.lower()}-{self.run_id}@vetted.test"
        browser = self._client()
        csrf = browser.get("/api/auth/csrf").json()["csrf_token"]
        browser.post(
            "/api/auth/register",
            json={"email": email, "password": STRONG_PASSWORD, "role": "engineer", "full_name": name},
            headers={"X-CSRFToken": csrf},
        ).raise_for_status()
        engineer = self.login(name, email, STRONG_PASSWORD)
        profile_id = engineer.call("GET", "/api/me")["engineer_profile"]["id"]
        engineer.call(
            "PATCH",
            f"/api/accounts/engineer-profiles/{profile_id}",
            json={
                "headline": "Async Python engineer",
                "skills": skills,
                "hourly_rate_minor": rate,
                "weekly_hours_available": 30,
                "time_zone": zone,
                "years_experience": 8,
            },
        )
        self.say(f"  {name} registered as an engineer ({email}), skills {', '.join(skills)}")
        return engineer

    def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise StoryError(f"timed out after {self.wait_seconds:.0f}s waiting for {what}")

    # --- the story ---------------------------------------------------------------------

    def cast(self) -> None:
        self.say("1. The cast")
        self.staff = self.login("Staff", "staff@vetted.test")
        # Four eyes: the interviewer does not approve.
        self.lead = self.login("Lead", "lead@vetted.test")
        self.client = self.login("Client", "client@vetted.test")
        self.skill = f"demo-{self.run_id}"
        self.first = self.register_engineer("Grace", ["python", "asyncio", self.skill], 9_000, "Europe/London")
        self.second = self.register_engineer("Edsger", ["python", "postgresql", self.skill], 8_000, "Europe/Amsterdam")

    def vet(self) -> None:
        self.say("2. Staff vet both engineers against the rubric")
        for engineer, score in ((self.first, 4), (self.second, 3)):
            application = engineer.call(
                "POST",
                "/api/vetting/applications",
                json={"statement": "I have run asyncio services in production for years.", "links": []},
            )
            base = f"/api/vetting/staff/applications/{application['id']}"
            self.staff.call("POST", f"{base}/screen", json={"note": "CV looks right"})
            interview = self.staff.call("POST", f"{base}/interview", json={})
            scores = [{"criterion_id": s["criterion_id"], "value": score, "note": "demo"} for s in interview["scores"]]
            self.staff.call("PUT", f"{base}/scores", json={"scores": scores})
            decided = self.lead.call("POST", f"{base}/approve", json={"note": "Welcome"})
            status = engineer.call("GET", "/api/vetting/status")
            weighted = decided["score_bp"] / 100
            self.say(
                f"  {engineer.name}: {len(scores)} criteria scored {score}/4 -> weighted {weighted:.2f}%,"
                f" level {status['level']}, vetted until {status['expires_at'][:10]}"
            )

    def raise_request(self) -> None:
        self.say("3. The client raises a request; the worker matches and invites")
        draft = self.client.call(
            "POST",
            "/api/requests",
            json={
                "title": f"Async payments service ({self.run_id})",
                "description": "An asyncio service talking to Stripe.",
                "required_skills": [self.skill, "python"],
                "nice_to_have_skills": ["asyncio"],
                "min_level": "mid",
                "budget_kind": "hourly",
                "budget_minor": 10_000,
                "currency": "usd",
                "hours_per_week": 20,
                "time_zone": "Europe/London",
                "min_overlap_hours": 4,
                "start_date": "2099-01-04",
            },
        )
        started = time.monotonic()
        raised = self.client.call("POST", f"/api/requests/{draft['id']}/raise")
        self.request_id = raised["id"]
        self.say(f"  raised request {self.request_id}; deadline {raised['clock']['deadline']}")
        self.invitations = {}
        for engineer in (self.first, self.second):
            invitation = self.wait_for(f"{engineer.name}'s invitation", self._invitation_of(engineer))
            self.invitations[engineer.name] = invitation["id"]
        self.timings["raise_to_invitations_seconds"] = time.monotonic() - started
        clock = self.client.call("GET", f"/api/requests/{self.request_id}")["clock"]
        seconds = self.timings["raise_to_invitations_seconds"]
        self.say(f"  both engineers invited {seconds:.2f}s after raising; clock: {clock['summary']}")

    def _invitation_of(self, engineer: Actor, request_id: int = 0) -> Callable[[], dict[str, Any] | None]:
        def find() -> dict[str, Any] | None:
            items = engineer.call("GET", "/api/requests/invitations")["items"]
            return next((i for i in items if i["request"]["id"] == (request_id or self.request_id)), None)

        return find

    def accept(self) -> None:
        self.say("4. Both engineers accept; the client sees the shortlist and why")
        for engineer in (self.first, self.second):
            engineer.call("POST", f"/api/requests/invitations/{self.invitations[engineer.name]}/accept")
        shortlist = self.client.call("GET", f"/api/requests/{self.request_id}/shortlist")["items"]
        for entry in shortlist:
            card, why = entry["card"], entry["breakdown"]
            self.say(
                f"  {card['full_name']}: level {card['level']}, match score {entry['score_bp'] / 100:.2f}%"
                f" (skills {why['skills']['score_bp'] / 100:.0f}%, vetting {why['vetting']['score_bp'] / 100:.0f}%,"
                f" time zone {why['time_zone']['score_bp'] / 100:.0f}%)"
            )

    def chat(self) -> None:
        self.say("5. The client talks to each engineer")
        conversations = self.client.call("GET", "/api/conversations")["items"]
        self.conversations = {c["engineer_id"]: c["id"] for c in conversations if c["request_id"] == self.request_id}
        for engineer in (self.first, self.second):
            conversation = self.conversations[engineer.user_id]
            path = f"/api/conversations/{conversation}/messages"
            self.client.call(
                "POST",
                path,
                json={
                    "body": f"Hi {engineer.name}, how would you bound concurrency here?",
                    "client_msg_id": f"{self.run_id}-{engineer.name}",
                },
            )
            engineer.call("POST", path, json={"body": "A semaphore per dependency, timeouts on every call."})
            last = engineer.call("GET", path)["items"][-1]
            self.say(f"  {engineer.name} answered: {last['body']!r}")

    def hire(self) -> None:
        self.say("6. The client hires the first engineer, who sets up payouts")
        attempt = self.client.http.post(
            f"/api/requests/{self.request_id}/hire", json={"engineer_id": self.first.user_id}
        )
        if attempt.status_code == 409:
            self.say(f"  hiring refused first: {attempt.json()['detail']}")
            link = self.first.call("POST", "/api/payments/payout-account/onboarding", json={})["url"]
            httpx.get(link, timeout=10)  # the engineer completes Stripe's onboarding form
            self.wait_for(
                "payouts to be enabled (account.updated webhook)",
                lambda: (self.first.http.get("/api/payments/payout-account").json() or {}).get("payouts_enabled"),
            )
            self.say("  Stripe sent account.updated: payouts enabled")
            self.engagement = self.client.call(
                "POST", f"/api/requests/{self.request_id}/hire", json={"engineer_id": self.first.user_id}
            )
        else:
            attempt.raise_for_status()
            self.engagement = attempt.json()
        rate = f"{format_money(self.engagement['rate_minor'], self.engagement['currency'])}/h"
        self.say(f"  hired: engagement {self.engagement['id']} at {rate}")

    def pay(self) -> None:
        self.say("7. A milestone is funded into escrow, submitted, approved and released")
        milestone = self.client.call(
            "POST",
            f"/api/payments/engagements/{self.engagement['id']}/milestones",
            json={"title": "Worker pool with backpressure", "amount_minor": 150_000, "due_date": "2099-02-01"},
        )
        funding = self.client.call(
            "POST",
            f"/api/payments/milestones/{milestone['id']}/fund",
            headers={"Idempotency-Key": f"fund-{self.run_id}"},
        )
        # What Stripe.js does in the client's browser with the client secret:
        httpx.post(
            f"{self.stripe_base}/v1/payment_intents/{funding['payment_intent_id']}/confirm",
            data={"payment_method": "pm_card_visa"},
            headers={"Authorization": "Bearer sk_test_double"},
            timeout=10,
        ).raise_for_status()
        self.wait_for(
            "the milestone to be funded (payment_intent.succeeded webhook)",
            lambda: self.client.call("GET", f"/api/payments/milestones/{milestone['id']}")["status"] == "funded",
        )
        self.say(f"  funded: 1,500.00 usd in escrow (PaymentIntent {funding['payment_intent_id']})")
        self.first.call("POST", f"/api/payments/milestones/{milestone['id']}/submit", json={"note": "Done, with tests"})
        self.say("  the engineer submitted the work")
        released = self.client.call(
            "POST",
            f"/api/payments/milestones/{milestone['id']}/approve",
            headers={"Idempotency-Key": f"approve-{self.run_id}"},
        )
        transfer = httpx.get(
            f"{self.stripe_base}/v1/transfers/{released['transfer_id']}",
            headers={"Authorization": "Bearer sk_test_double"},
            timeout=10,
        ).json()
        self.transfer = transfer
        self.milestone = released
        paid = format_money(transfer["amount"], transfer["currency"])
        self.say(
            f"  approved and released: Transfer {transfer['id']} of {paid}"
            f" to {transfer['destination']} (source {transfer['source_transaction']})"
        )

    def bill_hourly(self) -> None:
        self.say("8. The engagement is hourly: the client saves a card to be charged each week")
        engagement_id = self.engagement["id"]
        setup = self.client.call(
            "POST",
            f"/api/payments/engagements/{engagement_id}/payment-method",
            headers={"Idempotency-Key": f"card-{self.run_id}"},
        )
        # What Stripe.js does in the client's browser with the SetupIntent's client secret:
        httpx.post(
            f"{self.stripe_base}/v1/setup_intents/{setup['setup_intent_id']}/confirm",
            data={"payment_method": "pm_card_visa"},
            headers={"Authorization": "Bearer sk_test_double"},
            timeout=10,
        ).raise_for_status()
        billing = self.wait_for(
            "the card to be saved (setup_intent.succeeded webhook)", lambda: self._active(engagement_id)
        )
        self.billing = billing
        self.say(
            f"  card saved: {billing['card_brand']} ending {billing['card_last4']}; the engagement started at"
            f" {billing['started_at']}. From now on the engineer logs time (POST .../time-entries), up to"
            f" {billing['hours_this_week']} h a week; each week closes Monday 12:00 UTC and is charged once approved"
        )

    def _active(self, engagement_id: int) -> dict[str, Any] | None:
        billing = self.client.call("GET", f"/api/payments/engagements/{engagement_id}/billing")
        return billing if billing["status"] == "active" else None

    def review(self) -> None:
        self.say("9. Both sides review each other; the reviews open once both are in")
        (round_,) = self.client.call("GET", f"/api/reviews/engagements/{self.engagement['id']}")["items"]
        self.client.call(
            "POST",
            f"/api/reviews/rounds/{round_['id']}",
            json={
                "overall": 5,
                "categories": {"quality": 5, "communication": 5, "reliability": 5, "expertise": 4},
                "public_text": "Bounded every queue and every call. Would hire again.",
            },
        )
        sealed = self.first.call("GET", f"/api/reviews/engagements/{self.engagement['id']}")["items"][0]
        self.say(f"  the client reviewed; the engineer sees it yet: {sealed['theirs'] is not None}")
        self.first.call(
            "POST",
            f"/api/reviews/rounds/{round_['id']}",
            json={
                "overall": 5,
                "categories": {"clarity": 5, "responsiveness": 4, "fairness": 5},
                "public_text": "Clear brief, quick answers, paid on time.",
            },
        )
        self.reputation = self.client.call("GET", f"/api/reviews/users/{self.first.user_id}")
        self.say(
            f"  both published: {self.first.name} is rated {self.reputation['stars']} stars from"
            f" {self.reputation['review_count']} review(s); matching weighs it in every next request"
        )

    def next_request(self) -> None:
        self.say("10. The client's next request: the rating is part of every match")
        draft = self.client.call(
            "POST",
            "/api/requests",
            json={
                "title": f"Webhook backlog drain ({self.run_id})",
                "description": "Bound a Celery queue.",
                "required_skills": [self.skill, "python"],
                "nice_to_have_skills": [],
                "min_level": "mid",
                "budget_kind": "fixed",
                "budget_minor": 200_000,
                "currency": "usd",
                "hours_per_week": 10,
                "time_zone": "Europe/London",
                "min_overlap_hours": 2,
                "start_date": "2099-02-01",
            },
        )
        self.next_request_id = self.client.call("POST", f"/api/requests/{draft['id']}/raise")["id"]
        invitation = self.wait_for(
            f"{self.first.name}'s invitation to the next request", self._invitation_of(self.first, self.next_request_id)
        )
        self.first.call("POST", f"/api/requests/invitations/{invitation['id']}/accept")
        matches = self.client.call("GET", f"/api/requests/{self.next_request_id}/matches")["items"]
        self.next_matches = matches
        for match in matches:
            who = self.first.name if match["engineer_id"] == self.first.user_id else "(not yet accepted)"
            reputation = match["breakdown"]["reputation"]["score_bp"]
            self.say(
                f"  rank {match['rank']} {who}: score {match['score_bp'] / 100:.2f}%, reputation"
                f" {reputation / 100:.2f}% (weight {match['breakdown']['weights']['reputation']}%)"
            )

    def run(self) -> None:
        steps = (
            self.cast,
            self.vet,
            self.raise_request,
            self.accept,
            self.chat,
            self.hire,
            self.pay,
            self.bill_hourly,
            self.review,
            self.next_request,
        )
        for step in steps:
            step()
