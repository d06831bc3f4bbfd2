"""Every kind of notification, once: who gets it, how its email reads, and whether it can be turned off.

`notify_user(event=...)` may only name a kind listed here (a test reads every call in
the code and compares). Each kind's email is the template `email/<template>.html`,
whose partials `text` and `html` are the two parts; `subject` and `summary` are
one-line templates over the same context (`p`: the payload, `user`, `site_url`).

Essential kinds (money and security) are always emailed immediately, whatever the
user chose: `essential` is True for the whole kind, or a test of the payload when only
some notifications of the kind are (a timesheet whose charge failed).

A reminder is a kind too, plus a `Reminder` in `marketplace.notifications.reminders`
that says when it is due; adding one (the review window closing, for example) is one
`Kind` here and one `Reminder` there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENGINEER, CLIENT, BOTH, STAFF, EVERYONE = "engineer", "client", "client and engineer", "staff", "every user"


@dataclass(frozen=True)
class Kind:
    name: str
    audience: str
    description: str
    subject: str
    summary: str = ""
    template: str = "generic"
    essential: bool | Callable[[dict[str, Any]], bool] = False
    # Emailed as the unread-chat digest, CHAT_EMAIL_DIGEST_MINUTES after it, only if still unread.
    chat: bool = False
    # Which notifications of the kind are worth an email (None: all). The rest, steps the system
    # takes on its own within seconds (a milestone "releasing"), stay in the notification log.
    emailed: Callable[[dict[str, Any]], bool] | None = None

    def emails(self, payload: dict[str, Any]) -> bool:
        return self.emailed is None or self.emailed(payload)

    def is_essential(self, payload: dict[str, Any]) -> bool:
        return self.essential(payload) if callable(self.essential) else self.essential

    @property
    def always_essential(self) -> bool:
        """Whether no notification of this kind can be turned off (the preference cannot be changed)."""
        return self.essential is True

    @property
    def partly_essential(self) -> bool:
        return callable(self.essential)

    def concerns(self, *, role: str, is_staff: bool) -> bool:
        """Whether a user of `role` (or staff) can receive this kind: their preferences list it."""
        if self.audience == EVERYONE:
            return True
        return (is_staff and STAFF in self.audience) or (bool(role) and role in self.audience)


def _charge_failed(payload: dict[str, Any]) -> bool:
    return payload.get("status") == "charge_failed"


# The states a person acts on or waits for; the -ing steps and "approved" (released within seconds) are not.
_MILESTONE_EMAILED = {"funded", "submitted", "changes_requested", "released", "refunded", "disputed", "charged_back"}
_TIMESHEET_EMAILED = {"submitted", "disputed", "charge_failed", "charged", "paid", "carried_over", "void"}


def _milestone_emailed(payload: dict[str, Any]) -> bool:
    return payload.get("status") in _MILESTONE_EMAILED


def _timesheet_emailed(payload: dict[str, Any]) -> bool:
    return payload.get("status") in _TIMESHEET_EMAILED


def _billing_paused(payload: dict[str, Any]) -> bool:
    return payload.get("status") == "paused"


_STAFF_ALERT = "staff_alert"

_KINDS = [
    # --- hiring: invitations, shortlists, the 8-hour clock -------------------------------------
    Kind(
        "invitation.created",
        ENGINEER,
        "A client's request invites you.",
        subject="New invitation: {{ p.title }}",
        template="invitation_created",
    ),
    Kind(
        "invitation.expiring",
        ENGINEER,
        "Reminder: an invitation you have not answered expires within the hour.",
        subject="Your invitation expires soon: {{ p.title }}",
        template="invitation_expiring",
    ),
    Kind(
        "invitation.expired",
        ENGINEER,
        "An invitation expired before you answered.",
        subject="Invitation expired",
        summary="Your invitation to request #{{ p.request_id }} expired unanswered.",
    ),
    Kind(
        "invitation.withdrawn",
        ENGINEER,
        "An invitation or your shortlist place was taken back.",
        subject="Invitation withdrawn",
        summary="Your invitation to request #{{ p.request_id }} was withdrawn: {{ p.reason }}.",
    ),
    Kind(
        "request.filled",
        ENGINEER,
        "The client hired another engineer from the shortlist you were on.",
        subject="The request was filled",
        summary="Request #{{ p.request_id }} was filled by another engineer. Thank you for your time.",
    ),
    Kind(
        "engagement.created",
        ENGINEER,
        "A client hired you.",
        subject="You are hired on request #{{ p.request_id }}",
        summary="The client hired you: engagement #{{ p.engagement_id }} has started.",
    ),
    Kind(
        "shortlist.changed",
        CLIENT,
        "An engineer joined or left your shortlist.",
        subject="Your shortlist changed",
        template="shortlist_changed",
    ),
    Kind(
        "request.pool_empty",
        f"{CLIENT} and {STAFF}",
        "Nobody matches a request as it stands.",
        subject="Nobody matches {{ p.title }} yet",
        summary="No vetted engineer matches “{{ p.title }}” as it stands; widening it is proposed next.",
    ),
    Kind(
        "request.widening_proposed",
        CLIENT,
        "Widening your request would find more engineers.",
        subject="Widen your request to find engineers",
        summary="Widening step {{ p.step }} would help: {{ p.change }}.",
    ),
    Kind(
        "request.deadline_extended",
        CLIENT,
        "Staff extended the matching deadline of your request.",
        subject="Your request's deadline was extended",
        summary="The matching deadline of request #{{ p.request_id }} is now {{ p.deadline|when }}: {{ p.reason }}.",
    ),
    Kind(
        "request.at_risk",
        STAFF,
        "Reminder: a request may miss its 8-hour matching promise.",
        subject="At risk: {{ p.title }}",
        summary="Request “{{ p.title }}” has no shortlist yet and its deadline is {{ p.deadline|when }}.",
    ),
    Kind(
        "request.deadline_breached",
        f"{CLIENT} and {STAFF}",
        "A request missed its matching deadline.",
        subject="Deadline missed: {{ p.title }}",
        summary="Request “{{ p.title }}” passed its matching deadline ({{ p.deadline|when }}) without a shortlist.",
    ),
    # --- chat --------------------------------------------------------------------------------
    Kind(
        "message.created",
        BOTH,
        "Unread chat messages, gathered a while after they arrive (not if you read them).",
        subject="Unread messages on Vetted",
        template="chat_digest",
        chat=True,
    ),
    # --- vetting -----------------------------------------------------------------------------
    Kind(
        "vetting.stage_changed",
        ENGINEER,
        "Your vetting application moved to another stage.",
        subject="Your vetting application: {{ p.status|label }}",
        summary="Your vetting application #{{ p.application_id }} is now “{{ p.status|label }}”.",
    ),
    Kind(
        "vetting.revoked",
        ENGINEER,
        "Your vetting was revoked.",
        subject="Your vetting was revoked",
        summary="Your vetting was revoked: {{ p.reason }}.",
    ),
    Kind(
        "vetting.renewal_open",
        ENGINEER,
        "Reminder: your vetting expires soon and renewal is open.",
        subject="Renew your vetting",
        summary="Your vetting expires on {{ p.expires_at|when }}; renewal is open now.",
    ),
    # --- payments ----------------------------------------------------------------------------
    Kind(
        "milestone.changed",
        BOTH,
        "A milestone was funded, submitted, sent back for changes, released, refunded or disputed"
        " (the steps between are in the notification log only).",
        subject="Milestone “{{ p.title }}”: {{ p.status|label }}",
        template="milestone_changed",
        emailed=_milestone_emailed,
    ),
    Kind(
        "timesheet.changed",
        BOTH,
        "An hourly week was submitted, disputed, charged, paid, carried over or voided; a failed charge"
        " cannot be turned off.",
        subject="{% if p.status == 'charge_failed' %}Payment failed for the week of {{ p.week_start }}"
        "{% else %}Timesheet for the week of {{ p.week_start }}: {{ p.status|label }}{% endif %}",
        template="timesheet_changed",
        essential=_charge_failed,
        emailed=_timesheet_emailed,
    ),
    Kind(
        "timesheet.awaiting_approval",
        CLIENT,
        "Reminder: a week of hours awaits your approval; silence approves it at the deadline.",
        subject="Hours to review by {{ p.review_deadline|when }}",
        template="timesheet_awaiting_approval",
    ),
    Kind(
        "billing.changed",
        BOTH,
        "Hourly billing paused or resumed; a pause cannot be turned off.",
        subject="Billing {{ p.status|label }} on engagement #{{ p.engagement_id }}",
        template="billing_changed",
        essential=_billing_paused,
    ),
    Kind(
        "billing.cap_changed",
        ENGINEER,
        "The client changed your weekly hours cap.",
        subject="Your weekly cap is now {{ p.hours }} hours",
        summary="From {{ p.applies_from }}, engagement #{{ p.engagement_id }} allows {{ p.hours }} hours a week.",
    ),
    Kind(
        "payouts.updated",
        ENGINEER,
        "Your payout account was enabled or disabled.",
        subject="Payouts {% if p.payouts_enabled %}enabled{% else %}disabled{% endif %}",
        summary="{% if p.payouts_enabled %}You can now be paid.{% else %}Payouts are off: finish your payout"
        " account so clients can hire you.{% endif %}",
    ),
    # --- reviews -----------------------------------------------------------------------------
    Kind(
        "review.due",
        BOTH,
        "A paid step can be reviewed: say how it went, within the review window.",
        subject="How did it go? Review engagement #{{ p.engagement_id }}",
        summary="You can review the other side of engagement #{{ p.engagement_id }} until {{ p.closes_at|when }}."
        " Neither side sees the other's review until both are in or the window closes.",
    ),
    Kind(
        "review.published",
        BOTH,
        "Both reviews of a step are visible (both were in, or the window closed).",
        subject="Reviews published on engagement #{{ p.engagement_id }}",
        summary="The reviews of engagement #{{ p.engagement_id }} ({{ p.step }}) are now visible.",
    ),
    # --- security ----------------------------------------------------------------------------
    Kind(
        "api_token.created",
        EVERYONE,
        "A new API token (a login for programs) was created on your account.",
        subject="A new API token was created",
        template="api_token_created",
        essential=True,
    ),
    # --- alerts to staff ---------------------------------------------------------------------
    *(
        Kind(name, STAFF, description, subject=f"[staff] {name}", template=_STAFF_ALERT)
        for name, description in [
            ("timesheet.disputed", "A client disputed hours of a week."),
            ("timesheet.charge_refused", "A week's charge was refused before reaching Stripe."),
            ("timesheet.payout_refused", "A week's payout was refused before reaching Stripe."),
            ("milestone.disputed", "A milestone or its card payment was disputed."),
            ("milestone.release_refused", "A milestone's release was refused."),
            ("milestone.refund_refused", "A milestone's refund was refused."),
            ("milestone.settle_refused", "A dispute's settlement was refused."),
            ("dispute.unmatched", "A card dispute matches none of our payments."),
            ("dispute.closed", "A card dispute was won or lost."),
            ("payment_step.stuck", "A payment step could not be finished."),
            ("stripe_event.stuck", "A Stripe webhook event could not be processed."),
        ]
    ),
]

KINDS: dict[str, Kind] = {kind.name: kind for kind in _KINDS}


def kind_of(name: str) -> Kind | None:
    return KINDS.get(name)


def register(kind: Kind) -> None:
    """Add a kind from another app (its AppConfig.ready), such as the review window's reminder."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"notification kind {kind.name} is registered already")
    KINDS[kind.name] = kind


def kinds_markdown() -> str:
    """The table docs/notifications.md carries between its markers (a test compares them)."""
    rows = ["| kind | who gets it | what it says | can be turned off |", "|---|---|---|---|"]
    for kind in sorted(KINDS.values(), key=lambda kind: kind.name):
        if kind.always_essential:
            off = "no: security"
        elif kind.partly_essential:
            off = "yes, except the essential ones (see below)"
        else:
            off = "yes"
        rows.append(f"| `{kind.name}` | {kind.audience} | {kind.description} | {off} |")
    return "\n".join(rows)
