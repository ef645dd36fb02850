"""The ASGI application of one replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp

from sut.config import Config
from sut.replica import Replica
from sut.routes import api, ws
from sut.routes.errors import EXCEPTION_HANDLERS
from sut.routes.middleware import InstanceHeader


def create_app(config: Config) -> tuple[ASGIApp, Replica]:
    replica = Replica.build(config)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await replica.start()
        try:
            yield
        finally:
            await replica.stop()

    app = Starlette(routes=[*api.ROUTES, *ws.ROUTES], exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.replica = replica
    # Outermost, so even a 500 from Starlette's error middleware carries X-Instance.
    return InstanceHeader(app, config.instance), replica
