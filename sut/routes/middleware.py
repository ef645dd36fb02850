"""`X-Instance` on every HTTP response, so a load generator behind a load balancer
knows which replica answered (pure ASGI: it must not buffer or touch WebSockets)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class InstanceHeader:
    def __init__(self, app: ASGIApp, instance: str) -> None:
        self.app = app
        self.header = (b"x-instance", instance.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_instance(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_instance)
