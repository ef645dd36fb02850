"""Endpoint: one socket of a proxied connection, as an asyncio protocol."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Callable, Protocol

# Per-socket buffering in user space before we stop reading the other socket. Large
# enough that bulk transfers do not flip reading on and off for every read.
WRITE_HIGH = 1024 * 1024
WRITE_LOW = 256 * 1024
# A socket whose peer stops reading must not keep a closed connection alive forever.
CLOSE_GRACE = 5.0
# Read buffer: small for request/response traffic, grown while reads keep filling it
# (a bulk transfer), and small again once the traffic is back to small reads; so bulk
# moves in few large reads and quiet connections stay small.
READ_MIN = 32 * 1024
READ_MAX = 1024 * 1024
# Small reads in a row before a grown buffer goes back to READ_MIN: one short read in
# the middle of a bulk transfer must not make it start over from the smallest size.
SHRINK_AFTER = 4


class EndpointLink(Protocol):
    """A link (link.py, which builds on this module) as its sockets see it."""

    @property
    def source(self) -> Endpoint: ...

    def feed(self, data: memoryview) -> bool: ...

    def feed_eof(self) -> None: ...


class EndpointOwner(Protocol):
    """The connection a socket belongs to (connection.py)."""

    def endpoint_lost(self, endpoint: Endpoint, exc: Exception | None) -> None: ...


class Endpoint(asyncio.BufferedProtocol):
    """Reads feed `outgoing` (the link whose source this socket is); `incoming` is the
    link that writes here. Reading pauses while any reason to hold it is set.

    Reads land in a buffer of ours and go straight to the other socket without a copy
    when no toxic is in the way and nothing is queued for that socket. The buffer is
    reused only if that write went out in full; otherwise the transport still holds a
    view of it and we take a new one. Behind queued data a read is copied instead: a
    peer that stops reading would otherwise pin a whole buffer per small read.
    """

    def __init__(self, side: str, on_made: Callable[[Endpoint], None] | None = None) -> None:
        self.side = side  # "client" or "upstream", for logs
        self.connection: EndpointOwner | None = None
        self.outgoing: EndpointLink | None = None
        self.incoming: EndpointLink | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = "-"
        self.alive = True  # until the socket is lost; an upstream still dialling counts
        self.eof_written = False
        self._on_made = on_made
        self._holds: set[str] = set()
        # What arrives for an upstream socket still being dialled, written once it is up.
        self._pending: list[bytes | memoryview] = []
        self._pending_eof = False
        self._buffer = memoryview(bytearray(READ_MIN))
        self._small_reads = 0
        self._lost: asyncio.Future[None] | None = None  # made only when someone waits for it

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small requests (Redis, Postgres) must not wait for Nagle's timer.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        if self._pending:
            transport.write(b"".join(self._pending))
            self._pending.clear()
        if self._pending_eof and transport.can_write_eof():
            transport.write_eof()
        if self._on_made is not None:
            self._on_made(self)
        if self._holds:
            # uvloop starts reading after connection_made returns, whatever we asked
            # for in it, so the pause has to come just after.
            asyncio.get_running_loop().call_soon(self._sync_reading)

    def _sync_reading(self) -> None:
        if self._holds and self._reading_controllable():
            self.transport.pause_reading()  # type: ignore[union-attr]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        retained = self.outgoing.feed(buffer[:nbytes])  # type: ignore[union-attr]
        size = len(buffer)
        if nbytes == size:
            self._small_reads = 0
            size = min(size * 4, READ_MAX)
        elif nbytes <= READ_MIN < size:
            self._small_reads += 1
            if self._small_reads >= SHRINK_AFTER:
                self._small_reads, size = 0, READ_MIN
        else:
            self._small_reads = 0
        if retained or size != len(buffer):
            self._buffer = memoryview(bytearray(size))

    def eof_received(self) -> bool:
        self.outgoing.feed_eof()  # type: ignore[union-attr]
        return True  # keep writing: the other direction may still have data for this peer

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self.connection is not None:
            self.connection.endpoint_lost(self, exc)

    async def closed(self) -> None:
        """Return once the socket is really closed. A transport closes its socket only
        after the call that asked for it has returned (in the loop's next round): whoever
        must not answer before the peer has its FIN (disabling a proxy) waits here."""
        if self.transport is None or not self.alive:
            return
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._lost)

    def pause_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.source.hold("dest")

    def resume_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.source.release("dest")

    # --- used by links and the connection ---

    def send(self, data: bytes | memoryview) -> bool:
        """Write to the socket. True if the transport kept a reference to `data` (it
        could not all go out now), so a reusable buffer must not be reused."""
        if self.alive and not self.eof_written:
            if self.transport is None:
                self._pending.append(bytes(data))
            elif self.transport.get_write_buffer_size():
                # Queued behind unsent data: the transport would keep `data` as it is,
                # and a view keeps its whole read buffer alive, so it gets exactly the bytes.
                self.transport.write(bytes(data))
            else:
                self.transport.write(data)
                return self.transport.get_write_buffer_size() > 0
        return False

    def write_eof(self) -> None:
        if self.alive and not self.eof_written:
            self.eof_written = True
            if self.transport is None:
                self._pending_eof = True
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def hold(self, reason: str) -> None:
        if not self._holds and self._reading_controllable():
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._holds.add(reason)

    def release(self, reason: str) -> None:
        self._holds.discard(reason)
        if not self._holds and self._reading_controllable():
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _reading_controllable(self) -> bool:
        return self.alive and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Flush what is buffered, then FIN. Aborted if the peer will not take it."""
        transport = self.transport
        self.alive = self.alive and transport is not None
        if transport is None or transport.is_closing():
            return
        transport.close()
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)

    def abort(self, rst: bool = False) -> None:
        """Close now, dropping buffered data; with `rst`, the peer gets a TCP RST."""
        transport = self.transport
        if transport is None:
            self.alive = False
            return
        if rst and self.alive:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER on with a zero timeout: close() sends RST, not FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
