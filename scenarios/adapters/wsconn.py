"""A JSON-over-WebSocket client connection: one socket, read in the caller's greenlet.

The framing is websockets' sans-I/O protocol (its C speedups parse frames); the I/O is
a plain socket, which gevent makes cooperative inside Locust. Compared with
`websockets.sync` this needs one file descriptor per connection instead of three (a
socketpair and the socket), so one process can hold 10,000+ idle sockets within a
20,000 open-file limit, and a received frame is not handed from a background thread
to the reader through a queue, which halves the CPU per message. Several frames that
arrive in one read are parsed together and handed out one by one.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections import deque
from typing import Any, Callable

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.frames import Close, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from scenarios.adapters.base import ConnectFailed, Delivery, Disconnected, Welcome, replica_from

MAX_FRAME = 4 * 1024 * 1024
READ_SIZE = 256 * 1024
# A socket that always has data never blocks, so its reader would never let another
# greenlet run; it yields at least this often (time.sleep is gevent's when patched).
YIELD_EVERY = 0.005
_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE

Decoder = Callable[[Any], Delivery | None]


class WsClient:
    """An open WebSocket: `recv()` returns the next message's bytes; `headers` are the
    handshake response's (the 101), `replica` the one the load balancer named there."""

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock = sock
        self.proto = proto
        self.headers: Headers = Headers()
        self.messages: deque[bytes] = deque()
        self._fragments: list[bytes] = []
        self._closed: Disconnected | None = None
        self._yielded = time.monotonic()

    @classmethod
    def open(cls, url: str, timeout: float) -> "WsClient":
        """Connect and complete the handshake; ConnectFailed says why not."""
        deadline = time.monotonic() + timeout
        try:
            uri = parse_uri(url)
        except InvalidURI as exc:
            raise ConnectFailed(f"bad WebSocket URL: {exc}") from None
        try:
            sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        except OSError as exc:
            raise ConnectFailed(f"connect failed: {exc.strerror or exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            proto = ClientProtocol(uri, max_size=MAX_FRAME)
            proto.send_request(proto.connect())
            client = cls(sock, proto)
            client._flush()
            client._handshake(deadline)
        except ConnectFailed:
            _close_quietly(sock)
            raise
        except (OSError, ssl.SSLError) as exc:
            _close_quietly(sock)
            if isinstance(exc, (TimeoutError, socket.timeout)):
                raise ConnectFailed(f"handshake timed out after {timeout:g}s") from None
            raise ConnectFailed(f"handshake failed: {exc.strerror or exc}") from None
        return client

    def _handshake(self, deadline: float) -> None:
        proto = self.proto
        done = False
        while not done:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = self.sock.recv(READ_SIZE)
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            for event in proto.events_received():
                if isinstance(event, Response):
                    exc = proto.handshake_exc
                    if isinstance(exc, InvalidStatus):
                        status = exc.response.status_code
                        raise ConnectFailed(f"handshake rejected: HTTP {status}", status)
                    if exc is not None:
                        raise ConnectFailed(f"handshake failed: {exc}")
                    self.headers = event.headers
                    done = True
                else:
                    # The server may speak (or close, e.g. 4401) right after the handshake.
                    self._frame(event)
            if proto.handshake_exc is not None:
                raise ConnectFailed(f"handshake failed: {proto.handshake_exc}")
            if not done and not data:
                raise ConnectFailed("connection closed during the handshake")
        try:
            self._flush()  # e.g. the echo of a close frame that came with the handshake
        except OSError:
            pass

    @property
    def replica(self) -> str:
        return replica_from(self.headers)

    def _frame(self, frame: Any) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self.messages.append(frame.data)
            else:
                self._fragments = [frame.data]
        elif opcode is _CONT:
            self._fragments.append(frame.data)
            if frame.fin:
                self.messages.append(b"".join(self._fragments))
                self._fragments = []
        elif opcode is _CLOSE:
            close = Close.parse(frame.data)
            self._closed = Disconnected(close.code, close.reason)

    def _flush(self) -> None:
        out = self.proto.data_to_send()
        if out:
            data = b"".join(out)
            if data:
                self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message. Raises Disconnected at the end, TimeoutError at `timeout`."""
        messages = self.messages
        if messages:
            return messages.popleft()
        now = time.monotonic()
        if now - self._yielded > YIELD_EVERY:
            self._yielded = now
            time.sleep(0)
        deadline = None if timeout is None else now + timeout
        proto = self.proto
        while True:
            if self._closed is not None:
                raise self._closed
            self.sock.settimeout(None if deadline is None else max(0.001, deadline - time.monotonic()))
            try:
                data = self.sock.recv(READ_SIZE)
            except (TimeoutError, socket.timeout):
                raise TimeoutError("no message in time") from None
            except OSError as exc:
                self._closed = Disconnected(None, f"socket error: {exc.strerror or exc}")
                raise self._closed from None
            if not data:
                proto.receive_eof()
                self._closed = self._closed or Disconnected(None, "connection lost (no close frame)")
            else:
                proto.receive_data(data)
            for event in proto.events_received():
                self._frame(event)
            if proto.parser_exc is not None and self._closed is None:
                self._closed = Disconnected(1002, f"protocol error: {proto.parser_exc}")
            try:
                self._flush()  # pongs, the close echo
            except OSError:
                pass
            if messages:
                return messages.popleft()

    def send_text(self, text: str) -> None:
        try:
            self.proto.send_text(text.encode())
            self._flush()
        except OSError as exc:
            raise Disconnected(None, f"send failed: {exc.strerror or exc}") from None
        except Exception as exc:  # the protocol refuses to send on a closing connection
            raise Disconnected(None, f"send failed: {exc}") from None

    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and close the socket; never raises."""
        try:
            if self.proto.state is State.OPEN:
                self.proto.send_close(code)
                self.sock.settimeout(1.0)
                self._flush()
        except Exception:
            pass
        _close_quietly(self.sock)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network blip)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        _close_quietly(self.sock)


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def open_ws(url: str, timeout: float) -> WsClient:
    return WsClient.open(url, timeout)


def recv_json(ws: WsClient, timeout: float | None = None) -> Any:
    """Next message as JSON (None if it is not JSON); Disconnected at the end."""
    raw = ws.recv(timeout)
    try:
        return json.loads(raw)
    except ValueError:
        return None


class WsConnection:
    """One subscriber socket: frames in, decoded by the adapter's decoder."""

    def __init__(self, ws: WsClient, welcome: Welcome, decode: Decoder,
                 resume_frame: Callable[[int], Any] | None = None) -> None:
        self._ws = ws
        self.welcome = welcome
        self._decode = decode
        self._resume_frame = resume_frame
        self._loads = json.loads

    def receive(self) -> Delivery | None:
        raw = self._ws.recv()
        try:
            frame = self._loads(raw)
        except ValueError:
            return None
        return self._decode(frame)

    def resume(self, after: int) -> bool:
        if self._resume_frame is None:
            return False
        self._ws.send_text(json.dumps(self._resume_frame(after)))
        return True

    def close(self) -> None:
        self._ws.close()

    def abort(self) -> None:
        self._ws.abort()

    def closed_within(self, seconds: float) -> Disconnected | None:
        """A probe's question: does the server close this socket within `seconds`?
        Frames that arrive meanwhile are dropped."""
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self._ws.recv(left)
        except Disconnected as exc:
            return exc
        except TimeoutError:
            pass
        return None
