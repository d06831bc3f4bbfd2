"""The project's ASGI app plus a bare Channels echo room, for bench/bench_chat.py only.

`/ws/echo/<room>/` joins a channel-layer group and broadcasts every text frame to
it: the same server, the same layer, no authentication and no database. Its
delivery latency is the baseline that chat's persistence is measured against.
"""

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path

from marketplace.asgi import application as project


class Echo(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.room = f"echo.{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(self.room, {"type": "echo.frame", "text": text_data})

    async def echo_frame(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


_echo = URLRouter([path("ws/echo/<str:room>/", Echo.as_asgi())])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"].startswith("/ws/echo/"):
        await _echo(scope, receive, send)
    else:
        await project(scope, receive, send)
