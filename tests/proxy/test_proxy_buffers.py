"""Memory the proxy keeps for a peer that stops reading (a SIGSTOPped replica that is
subscribed to Redis keeps receiving small pub/sub messages).

The proxy runs in this process, on uvloop as `python -m chaos.proxy` does, so that
tracemalloc can see what its read path allocates and the test can wait for each
message to be read on its own (one read per message, no coalescing).
"""

from __future__ import annotations

import asyncio
import random
import socket
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from chaos.proxy import endpoint
from chaos.proxy.connection import Connection
from chaos.proxy.endpoint import READ_MAX, READ_MIN
from chaos.proxy.proxy import Proxy

uvloop = pytest.importorskip("uvloop")

LOOPBACK = "127.0.0.1"
MESSAGES = 200
MESSAGE = b"*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$16\r\n0123456789abcdef\r\n"


class Upstream(asyncio.Protocol):
    """The dependency: writes whatever the test tells it to."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connected.set_result(None)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.001)
    assert check(), what


def traced_in_endpoint(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.filter_traces(
        [tracemalloc.Filter(True, endpoint.__file__)]).statistics("filename"))


async def stalled_reader_retention() -> tuple[int, int, int]:
    """Fill the path to a client that never reads, then send small messages one read
    at a time. Returns (bytes the endpoint's allocations grew by, bytes of messages
    sent in that phase, the upstream endpoint's read buffer size at the end)."""
    upstream = Upstream()
    server = await asyncio.get_running_loop().create_server(lambda: upstream, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    proxy = Proxy("stalled", f"{LOOPBACK}:0", f"{LOOPBACK}:{port}", random.Random(7), False)
    await proxy.start()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    try:
        host, proxy_port = proxy.listen.rsplit(":", 1)
        await asyncio.get_running_loop().sock_connect(client, (host, int(proxy_port)))
        await asyncio.wait_for(upstream.connected, 10)
        await until(lambda: len(proxy.connections) == 1, "the proxy accepted the client")
        conn: Connection = next(iter(proxy.connections))
        towards_client = conn.client.transport
        await until(lambda: conn.upstream.transport is not None, "the proxy dialled upstream")

        # A bulk burst until the proxy itself has to queue what the client does not
        # read (staying under WRITE_HIGH, so reading goes on); the reads grow the read
        # buffer on the way.
        block = b"x" * (READ_MAX // 2)
        while towards_client.get_write_buffer_size() == 0:
            sent = conn.down.bytes_in
            upstream.transport.write(block)
            await until(lambda: conn.down.bytes_in >= sent + len(block), "the proxy read the burst")
        assert len(conn.upstream._buffer) > READ_MIN, "the burst should have grown the read buffer"

        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(MESSAGES):
                expected = conn.down.bytes_in + len(MESSAGE)
                upstream.transport.write(MESSAGE)
                await until(lambda: conn.down.bytes_in >= expected, "the proxy read the message")
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert towards_client.get_write_buffer_size() > 0, "the messages should be queued in the proxy"
        grown = traced_in_endpoint(after) - traced_in_endpoint(before)
        return grown, MESSAGES * len(MESSAGE), len(conn.upstream._buffer)
    finally:
        client.close()
        await proxy.stop()
        server.close()
        await server.wait_closed()


def run_on_uvloop(main: Callable[[], Awaitable[tuple[int, int, int]]]) -> tuple[int, int, int]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def test_a_stalled_reader_costs_what_it_was_sent_not_a_buffer_per_read():
    grown, sent, read_buffer = run_on_uvloop(stalled_reader_retention)
    # Each small read queued behind unsent data keeps a copy of its bytes, no more;
    # keeping the read buffer instead would cost READ_MIN..READ_MAX per message.
    assert grown < 4 * sent + 2 * READ_MIN, (
        f"{MESSAGES} small messages to a stalled reader grew the proxy's buffers by {grown} bytes "
        f"({sent} bytes of messages)")
    assert read_buffer == READ_MIN, "after a run of small reads the read buffer should be small again"
