"""Helpers for the fault proxy tests: the proxy as a real process, a real TCP echo
server, and socket reads that always have a deadline."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.toxiproxy_client import ToxiproxyClient, ToxiproxyError
from harness.ports import LOOPBACK, free_port
from tests.support import stop_process

# free_port and stop_process are shared helpers, re-exported for the proxy tests.
__all__ = ["LOOPBACK", "REPO", "EchoServer", "ProxyProcess", "free_port", "nothing_arrives", "recv_exactly",
           "recv_until_closed", "round_trip", "start_proxy_process", "stop_process"]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""


def start_proxy_process(log: Path, *extra: str, port: int | None = None) -> ProxyProcess:
    """Start `python -m chaos.proxy` and wait until its API answers."""
    port = port or free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy", "--host", LOOPBACK, "--port", str(port), *extra],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    handle = ProxyProcess(process, f"http://{LOOPBACK}:{port}", port, log)
    client = ToxiproxyClient(handle.url, timeout=1.0)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise AssertionError(f"proxy exited with {process.returncode}:\n{handle.log_tail()}")
        try:
            client.version()
            return handle
        except ToxiproxyError:
            if time.monotonic() > deadline:
                stop_process(process)
                raise AssertionError(f"proxy API did not come up:\n{handle.log_tail()}") from None
            time.sleep(0.05)


class EchoServer:
    """A TCP server that sends back every byte it gets, and closes once the client
    has finished sending. One thread per connection, all stopped by stop()."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.accepted = 0
        self._stopping = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="echo-accept", daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            conn.settimeout(60)
            thread = threading.Thread(target=self._echo, args=(conn,), name="echo-conn", daemon=True)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        try:
            while data := conn.recv(262144):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(5)
        for thread in threads:
            thread.join(5)


def recv_exactly(sock: socket.socket, size: int, timeout: float = 5.0) -> bytes:
    """Read `size` bytes within `timeout` seconds, or fail saying how many came."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"got {len(data)} of {size} bytes within {timeout}s")
        sock.settimeout(remaining)
        try:
            piece = sock.recv(size - len(data))
        except (TimeoutError, socket.timeout):
            continue
        if not piece:
            raise AssertionError(f"connection closed after {len(data)} of {size} bytes")
        data += piece
    return bytes(data)


def recv_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything until the peer closes; fails if it does not close within `timeout`."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"connection still open after {timeout}s ({len(data)} bytes read)")
        sock.settimeout(remaining)
        try:
            piece = sock.recv(262144)
        except (TimeoutError, socket.timeout):
            continue
        if not piece:
            return bytes(data)
        data += piece


def nothing_arrives(sock: socket.socket, within: float) -> bool:
    """True if no byte (and no close) arrives on `sock` within `within` seconds."""
    sock.settimeout(within)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except (TimeoutError, socket.timeout):
        return True
    return False


def round_trip(sock: socket.socket, payload: bytes = b"ping", timeout: float = 5.0) -> float:
    """Seconds for `payload` to come back through the echo server."""
    started = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload), timeout) == payload
    return time.perf_counter() - started
