"""Serve the Stripe double on a local port (`make run` starts it beside the service)."""

import os
from typing import Any

import uvicorn
from django.core.management.base import BaseCommand

from stripe_double import StripeDouble


class Command(BaseCommand):
    help = "Serve the in-repo Stripe double. Point STRIPE_API_BASE at it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("STRIPE_DOUBLE_PORT", "12111")))
        parser.add_argument("--webhook-url", default=os.environ.get("STRIPE_DOUBLE_WEBHOOK_URL"))

    def handle(self, *args: Any, host: str, port: int, webhook_url: str | None, **options: Any) -> None:
        from django.conf import settings

        double = StripeDouble(
            webhook_url=webhook_url, webhook_secret=settings.STRIPE_WEBHOOK_SECRET, public_url=f"http://{host}:{port}"
        )
        self.stdout.write(f"Stripe double on http://{host}:{port} (webhooks to {webhook_url or 'nowhere'})")
        uvicorn.run(double, host=host, port=port, log_level="warning", lifespan="on")
