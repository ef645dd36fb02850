"""Fixtures for the fault proxy tests: the proxy as a real process, real TCP servers.

Every server or process started here is stopped in a finally, and every wait has a
deadline, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator

import pytest
from proxy_support import LOOPBACK, EchoServer, ProxyProcess, start_proxy_process, stop_process

from chaos.toxiproxy_client import Proxy, ToxiproxyClient


@pytest.fixture(scope="session")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    handle = start_proxy_process(log, "--seed", "7", "--log-level", "debug")
    try:
        yield handle
    finally:
        stop_process(handle.process)


@pytest.fixture
def api(proxy_server: ProxyProcess) -> Iterator[ToxiproxyClient]:
    client = ToxiproxyClient(proxy_server.url, timeout=5.0)
    try:
        yield client
    finally:
        for name in client.proxies():
            client.delete_proxy(name)


@pytest.fixture(scope="session")
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.stop()


_names = itertools.count(1)


@pytest.fixture
def echo_proxy(api: ToxiproxyClient, echo_server: EchoServer) -> Proxy:
    """A fresh proxy in front of the echo server (deleted by the `api` fixture)."""
    return api.create_proxy(f"echo-{next(_names)}", upstream=echo_server.address)


@pytest.fixture
def dial() -> Iterator[Callable[..., socket.socket]]:
    """Connect to a proxy; every socket is closed at the end of the test."""
    sockets: list[socket.socket] = []

    def connect(proxy: Proxy, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection((LOOPBACK, proxy.listen_port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append(sock)
        return sock

    try:
        yield connect
    finally:
        for sock in sockets:
            sock.close()
