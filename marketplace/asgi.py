"""ASGI entry point: HTTP goes to Django, websockets through the guard to consumers."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
django.setup(set_prefix=False)
from marketplace import telemetry  # noqa: E402

telemetry.setup(default_service_name="vetted-web")
# Django's handler (with each request's sync thread from a pool: marketplace.handler), built first:
# the imports below need the app registry it loads.
from marketplace.handler import PooledThreadsASGIHandler  # noqa: E402

django_asgi_app = PooledThreadsASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from conversations.consumers import ChatConsumer  # noqa: E402
from marketplace.bodies import read_bodies_in_time  # noqa: E402
from marketplace.lifespan import lifespan  # noqa: E402
from marketplace.notifications.consumer import NotificationConsumer  # noqa: E402
from marketplace.websockets import NoRoute, guarded  # noqa: E402

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/conversations/<int:conversation_id>/", ChatConsumer.as_asgi()),
    re_path(r"", NoRoute.as_asgi()),  # anything else: refused at the handshake
]

application = ProtocolTypeRouter(
    {
        "http": telemetry.TracedHttp(read_bodies_in_time(django_asgi_app)),
        "lifespan": lifespan,
        "websocket": guarded(URLRouter(websocket_urlpatterns)),
    }
)
