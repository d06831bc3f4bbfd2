"""A stateful stand-in for the parts of the Stripe API that Vetted uses.

Stripe cannot be reached from tests or a laptop, so this double answers in
Stripe's wire format (form-encoded requests, JSON objects with Stripe's fields),
keeps state, honours idempotency keys the way Stripe does, and sends webhooks
signed the way Stripe signs them. stripe-python talks to it unchanged, with only
the API base pointed here. Serve it with `manage.py stripe_double`.

A development tool, apart from the product: the gateway (payments.gateway) is what production
runs, and this package is not in the wheel (pyproject.toml).
"""

from stripe_double.app import StripeDouble

__all__ = ["StripeDouble"]
