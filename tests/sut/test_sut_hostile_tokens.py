"""Hostile credentials get a refusal, never a 500 or a dropped connection: tokens and
keys with non-ASCII text, lone surrogates, newlines, and forged MACs, on the history
endpoint, publishing and the WebSocket."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import quote

import pytest
import websockets
from sut_support import SECRET, http

from harness.tokens import user_token

pytestmark = pytest.mark.integration

HOSTILE_TOKENS = [
    "u1.é", "u1.\u20ac" * 10, "é.abc", "u1." + "é" * 64, "u1.\ud800", "u1\n." + "0" * 64, "u1." + "0" * 63 + "é",
    user_token(SECRET, "u1")[:-1] + "é", "\u0000.\u0000", ".", "u1.",
]


@pytest.fixture(scope="module")
def replica(module_sut_factory, module_db, redis_server):
    return module_sut_factory.start("r1", broker="postgres", database_url=module_db, redis_url=redis_server.url)


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_history_refuses_a_hostile_token_in_the_query(replica, token):
    status, _, body = http(replica.url + "/api/notifications?token=" + quote(token, safe="", errors="surrogatepass"))
    assert status == 401 and "error" in body


def raw_request(port: int, head: bytes) -> bytes:
    """Send raw header bytes (what urllib would refuse to encode) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("credential", ["é".encode(), "\u20ac".encode(), b"\xff\xfe", "u1.é".encode()])
def test_history_and_publish_refuse_non_ascii_authorization(replica, credential):
    port = replica.port
    for request in (
        b"GET /api/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + credential
        + b"\r\nConnection: close\r\n\r\n",
        b"POST /api/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + credential
        + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    ):
        answer = raw_request(port, request)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"Traceback" not in answer
    assert "Traceback" not in replica.log_text()


@pytest.mark.parametrize("token", ["u1.é", "u1.\u20ac\u20ac", "é.0000", "u1." + "0" * 63 + "é"])
def test_websocket_closes_4401_for_a_non_ascii_token(replica, token):
    async def go() -> int | None:
        url = replica.ws_url("u1", quote(token, safe=""))
        async with websockets.connect(url, open_timeout=5) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code
    assert asyncio.run(go()) == 4401
