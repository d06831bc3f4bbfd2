"""Serve the ASGI application with uvicorn, draining on SIGTERM (marketplace.shutdown)."""

import os
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from marketplace.shutdown import DrainingServer


class Command(BaseCommand):
    help = "Serve the API and websockets; on SIGTERM, drain for SHUTDOWN_DRAIN_SECONDS, then stop gracefully."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        # The same trust as marketplace.proxies.uvicorn_proxy_args: no trusted proxy, no proxy headers.
        trusted = ",".join(settings.FORWARDED_ALLOW_IPS)
        config = uvicorn.Config(
            "marketplace.asgi:application",
            host=host,
            port=port,
            lifespan="on",
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            timeout_graceful_shutdown=int(settings.SHUTDOWN_GRACE_SECONDS),
        )
        DrainingServer(config, drain_seconds=settings.SHUTDOWN_DRAIN_SECONDS).run()
