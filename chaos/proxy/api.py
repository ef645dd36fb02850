"""The Toxiproxy 2.x HTTP API over a ProxyCollection: routes, handlers, responses."""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from . import bodies
from .collection import ProxyCollection
from .errors import ApiError, toxic_already_exists, toxic_not_found
from .httpserver import Request, Response
from .logs import event
from .proxy import Proxy
from .wrapper import ToxicWrapper

log = logging.getLogger("chaos.proxy.api")

# Toxiproxy-compatible version (2.x API), marked as this implementation.
VERSION = "2.12.0+gauntlet"

Handler = Callable[..., Awaitable[Response]]


def json_response(data: Any, status: int = HTTPStatus.OK) -> Response:
    return Response(status, json.dumps(data).encode())


def error_response(error: ApiError) -> Response:
    return json_response(error.to_json(), error.status)


class ToxiproxyApi:
    def __init__(self, proxies: ProxyCollection) -> None:
        self.proxies = proxies
        # One change at a time, as Toxiproxy's collection locks do; reads need no lock
        # because nothing awaits while a response is built.
        self._lock = asyncio.Lock()
        self._routes: dict[tuple[str, ...], dict[str, Handler]] = {
            ("reset",): {"POST": self.reset},
            ("version",): {"GET": self.version},
            ("connections",): {"GET": self.connection_counts},
            ("populate",): {"POST": self.populate},
            ("proxies",): {"GET": self.proxy_index, "POST": self.proxy_create},
            ("proxies", "*"): {
                "GET": self.proxy_show, "POST": self.proxy_update,
                "PATCH": self.proxy_update, "DELETE": self.proxy_delete,
            },
            ("proxies", "*", "toxics"): {"GET": self.toxic_index, "POST": self.toxic_create},
            ("proxies", "*", "toxics", "*"): {
                "GET": self.toxic_show, "POST": self.toxic_update,
                "PATCH": self.toxic_update, "DELETE": self.toxic_delete,
            },
        }

    async def handle(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            # Toxiproxy refuses browsers, so a web page cannot drive a local proxy.
            return Response(HTTPStatus.FORBIDDEN, b"User agent not allowed\n", "text/plain; charset=utf-8")
        segments = [unquote(s) for s in request.path.strip("/").split("/")] if request.path != "/" else [""]
        methods, args = self._route(segments)
        if methods is None:
            return error_response(ApiError(f"no such endpoint: {request.path}", HTTPStatus.NOT_FOUND))
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return error_response(ApiError(
                f"method {request.method} not allowed on {request.path} (allowed: {allowed})",
                HTTPStatus.METHOD_NOT_ALLOWED))
        try:
            if request.method == "GET":
                return await handler(request, *args)
            async with self._lock:
                return await handler(request, *args)
        except ApiError as error:
            return error_response(error)

    def _route(self, segments: list[str]) -> tuple[dict[str, Handler] | None, list[str]]:
        for pattern, methods in self._routes.items():
            if len(pattern) != len(segments):
                continue
            args = []
            for want, got in zip(pattern, segments):
                if want == "*":
                    args.append(got)
                elif want != got:
                    break
            else:
                return methods, args
        return None, []

    # --- server ---

    async def version(self, request: Request) -> Response:
        return Response(HTTPStatus.OK, json.dumps({"version": VERSION}).encode() + b"\n",
                        "application/json;charset=utf-8")

    async def connection_counts(self, request: Request) -> Response:
        """Open connections per proxy: not in Toxiproxy's API (a gauntlet extension, so
        the harness can chart each replica's connections to each dependency)."""
        return json_response({p.name: len(p.connections) for p in self.proxies.all()})

    async def reset(self, request: Request) -> Response:
        for proxy in self.proxies.all():
            await proxy.start()
            await proxy.toxics.reset()
            await proxy.sync_listener()
        log.info(event("reset", proxies=len(self.proxies.all())))
        return Response(HTTPStatus.NO_CONTENT)

    async def populate(self, request: Request) -> Response:
        specs = bodies.proxy_list(bodies.decode_json(request.body))
        done: list[Proxy] = []
        try:
            for spec in specs:
                done.append(await self.proxies.add_or_replace(spec))
        except ApiError as error:
            # Like Toxiproxy: the error, and the proxies made before it.
            body = {**error.to_json(), "proxies": [p.to_json() for p in done]}
            return json_response(body, error.status)
        return json_response({"proxies": [p.to_json() for p in done]}, HTTPStatus.CREATED)

    # --- proxies ---

    async def proxy_index(self, request: Request) -> Response:
        return json_response({p.name: p.to_json() for p in self.proxies.all()})

    async def proxy_create(self, request: Request) -> Response:
        spec = bodies.proxy_input(bodies.decode_json(request.body))
        proxy = await self.proxies.add(spec)
        return json_response(proxy.to_json(), HTTPStatus.CREATED)

    async def proxy_show(self, request: Request, name: str) -> Response:
        return json_response(self.proxies.get(name).to_json())

    async def proxy_update(self, request: Request, name: str) -> Response:
        proxy = self.proxies.get(name)
        current = bodies.ProxyInput(proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        spec = bodies.proxy_input(bodies.decode_json(request.body), defaults=current)
        await proxy.update(spec.listen, spec.upstream, spec.enabled)
        log.info(event("proxy.update", proxy=name, listen=proxy.listen,
                       upstream=proxy.upstream, enabled=proxy.enabled))
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: Request, name: str) -> Response:
        await self.proxies.remove(name)
        return Response(HTTPStatus.NO_CONTENT)

    # --- toxics ---

    async def toxic_index(self, request: Request, name: str) -> Response:
        return json_response([w.to_json() for w in self.proxies.get(name).toxics.all()])

    async def toxic_create(self, request: Request, name: str) -> Response:
        proxy = self.proxies.get(name)
        value = bodies.decode_json(request.body)
        head = bodies.toxic_head(value)
        if proxy.toxics.find(head.name) is not None:
            raise toxic_already_exists()
        toxic = bodies.new_toxic_attributes(head, value)
        wrapper = ToxicWrapper(head.name, head.type, head.stream, head.direction, head.toxicity, toxic)
        proxy.toxics.add(wrapper)
        await proxy.sync_listener()
        log.info(event("toxic.add", proxy=name, toxic=wrapper.name, type=wrapper.type,
                       stream=wrapper.stream, toxicity=wrapper.toxicity,
                       attributes=json.dumps(wrapper.to_json()["attributes"]),
                       connections=len(proxy.connections)))
        return json_response(wrapper.to_json())

    async def toxic_show(self, request: Request, name: str, toxic: str) -> Response:
        return json_response(self._toxic(name, toxic).to_json())

    async def toxic_update(self, request: Request, name: str, toxic: str) -> Response:
        wrapper = self._toxic(name, toxic)
        wrapper.toxicity = bodies.toxic_update(bodies.decode_json(request.body), wrapper.toxic, wrapper.toxicity)
        await self.proxies.get(name).toxics.update(wrapper)
        log.info(event("toxic.update", proxy=name, toxic=toxic, toxicity=wrapper.toxicity,
                       attributes=json.dumps(wrapper.to_json()["attributes"])))
        return json_response(wrapper.to_json())

    async def toxic_delete(self, request: Request, name: str, toxic: str) -> Response:
        wrapper = self._toxic(name, toxic)
        proxy = self.proxies.get(name)
        await proxy.toxics.remove(wrapper)
        await proxy.sync_listener()
        log.info(event("toxic.remove", proxy=name, toxic=toxic))
        return Response(HTTPStatus.NO_CONTENT)

    def _toxic(self, proxy_name: str, toxic_name: str) -> ToxicWrapper:
        wrapper = self.proxies.get(proxy_name).toxics.find(toxic_name)
        if wrapper is None:
            raise toxic_not_found()
        return wrapper
