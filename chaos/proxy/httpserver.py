"""A small HTTP/1.1 server for the API: keep-alive, Content-Length and chunked bodies.

The API is a handful of JSON calls per fault, so clarity beats speed here; what it must
get right is framing (so clients can keep connections open) and deadlines (so a stuck
client cannot hold a task forever).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from .logs import event

log = logging.getLogger("chaos.proxy.http")

MAX_HEADER = 64 * 1024
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 15.0  # to read one request once it has started (Toxiproxy: 15 s)
IDLE_TIMEOUT = 60.0  # between requests on a kept-alive connection


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADER, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(self._clients, timeout=2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        first = await reader.readuntil(b"\r\n")
                    async with asyncio.timeout(READ_TIMEOUT):
                        request = await _read_request(first, reader, writer)
                except BadRequest as exc:
                    await _write(writer, Response(exc.status, _error_body(str(exc), exc.status)), keep_alive=False)
                    return
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                    return
                if request is None:
                    return
                keep_alive = _keep_alive(request)
                try:
                    response = await self._handler(request)
                except Exception:
                    log.exception(event("api.error", method=request.method, path=request.path))
                    response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, _error_body("internal error", 500))
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(event("api.request", method=request.method, path=request.path,
                                    status=response.status))
                await _write(writer, response, keep_alive)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()


async def _read_request(first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    line = first.decode("latin-1").rstrip("\r\n")
    if not line:
        return None
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed request line {line[:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {"_version": version}
    for raw in await _read_lines(reader):
        name, sep, value = raw.partition(":")
        if not sep:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed header line {raw[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    return Request(method.upper(), urlsplit(target).path or "/", headers, body)


async def _read_lines(reader: asyncio.StreamReader) -> list[str]:
    """Header (or trailer) lines up to the blank line that ends them."""
    lines: list[str] = []
    total = 0
    while True:
        raw = await reader.readuntil(b"\r\n")
        total += len(raw)
        if total > MAX_HEADER:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers too large")
        if raw == b"\r\n":
            return lines
        lines.append(raw[:-2].decode("latin-1"))


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed chunk size") from None
            if size == 0:
                await _read_lines(reader)  # trailers, ignored
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    return await reader.readexactly(length) if length else b""


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.headers.get("_version") == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


async def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> None:
    status = HTTPStatus(response.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
    if status != HTTPStatus.NO_CONTENT:
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
    lines.extend(f"{k}: {v}" for k, v in response.headers.items())
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
    await writer.drain()


def _error_body(message: str, status: int) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()
