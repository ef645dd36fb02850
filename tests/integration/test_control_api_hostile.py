"""The harness's control API refuses hostile requests (a 401 or a 400), never a dropped
connection or a 500: non-ASCII tokens, bodies that are not an object, bad lengths."""

from __future__ import annotations

import json
import socket

import pytest

from harness.control import ControlServer
from harness.spec import StackSpec
from harness.stack import LocalStack


@pytest.fixture
def control(tmp_path):
    # A real stack object that is never brought up: refusals happen before any operation.
    stack = LocalStack(StackSpec(runs_dir=tmp_path))
    server = ControlServer(stack)
    server.start()
    try:
        yield server, stack.control_token
    finally:
        server.stop()


def send(url: str, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data, "the connection was dropped without an answer"
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


@pytest.mark.parametrize("credential", ["é".encode(), "\u20ac".encode() * 8, b"\xff", b"Bearer \xc3\xa9", b""])
def test_a_non_ascii_or_missing_token_is_refused_with_401(control, credential):
    server, _ = control
    status, body = send(server.url, b"POST /state HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                    b"Authorization: Bearer " + credential)
    assert status == 401 and body["error"] == "bad control token"


@pytest.mark.parametrize("length,body", [("-5", b""), ("abc", b""), ("999999999", b""), ("2", b"[]"),
                                         ("4", b"null"), ("5", b"\xff\xfe{}x"), ("1", b"{")])
def test_a_bad_body_is_refused_with_400(control, length, body):
    server, token = control
    status, answer = send(server.url, b"POST /restart HTTP/1.1\r\nHost: x\r\nContent-Length: " + length.encode()
                          + b"\r\nAuthorization: Bearer " + token.encode(), body)
    assert status == 400 and answer["error"], answer


def test_the_right_token_still_works(control):
    server, token = control
    status, answer = send(server.url, b"POST /state HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                      b"Authorization: Bearer " + token.encode(), b"{}")
    assert status == 200 and answer["version"] == 1
