"""Every write about money, by concern: the ledger, onboarding, milestones, webhooks, reconciliation.

Operations that call Stripe are `async` (`amilestone_fund`) and run in atomic
phases (see `payments.services.milestones`); each has a sync twin without the
`a` prefix for Celery tasks, admin actions and tests.
"""

from payments.services.ledger import fee_for, ledger_account, ledger_post
from payments.services.milestones import (
    amilestone_approve,
    amilestone_cancel,
    amilestone_fund,
    amilestone_mark_funded,
    amilestone_refund,
    amilestone_release_pending,
    amilestone_settle,
    apayments_sweep,
    asteps_resume,
    milestone_approve,
    milestone_cancel,
    milestone_create,
    milestone_dispute,
    milestone_fund,
    milestone_mark_funded,
    milestone_refund,
    milestone_release_pending,
    milestone_request_changes,
    milestone_settle,
    milestone_submit,
    payments_sweep,
    steps_resume,
)
from payments.services.onboarding import (
    apayout_account_sync,
    apayout_onboarding_start,
    payout_account_sync,
    payout_onboarding_start,
)
from payments.services.reconciliation import (
    acatch_up_with_stripe,
    aledger_compare_with_stripe,
    catch_up_with_stripe,
    ledger_compare_with_stripe,
)
from payments.services.webhooks import (
    adispute_sync,
    astripe_events_reconcile,
    stripe_event_process,
    stripe_event_receive,
    stripe_events_due,
    stripe_events_reconcile,
    stripe_events_retry,
    stripe_events_stuck,
)

__all__ = [
    "acatch_up_with_stripe",
    "adispute_sync",
    "aledger_compare_with_stripe",
    "amilestone_approve",
    "amilestone_cancel",
    "amilestone_fund",
    "amilestone_mark_funded",
    "amilestone_refund",
    "amilestone_release_pending",
    "amilestone_settle",
    "apayments_sweep",
    "apayout_account_sync",
    "apayout_onboarding_start",
    "asteps_resume",
    "astripe_events_reconcile",
    "catch_up_with_stripe",
    "fee_for",
    "ledger_account",
    "ledger_compare_with_stripe",
    "ledger_post",
    "milestone_approve",
    "milestone_cancel",
    "milestone_create",
    "milestone_dispute",
    "milestone_fund",
    "milestone_mark_funded",
    "milestone_refund",
    "milestone_release_pending",
    "milestone_request_changes",
    "milestone_settle",
    "milestone_submit",
    "payments_sweep",
    "payout_account_sync",
    "payout_onboarding_start",
    "steps_resume",
    "stripe_event_process",
    "stripe_event_receive",
    "stripe_events_due",
    "stripe_events_reconcile",
    "stripe_events_retry",
    "stripe_events_stuck",
]
