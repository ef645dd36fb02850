"""Link: one direction of a proxied connection, from a source socket through the
toxic stubs to a destination socket.

    source ──feed──► stub[0] ──► stub[1] ──► ... ──► dest
                     (toxic)     (toxic)

With no toxic the link is a straight write from the read callback to the other
socket (the fast path): no task, no queue, no timestamp. Toxics are appended at the
end and removed from anywhere while data flows; everything already read passes on in
order through whatever the chain is at that moment.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol

from .endpoint import Endpoint
from .stream import Chunk, Direction
from .stub import StubConnection, ToxicStub
from .toxics import CleanupToxic
from .wrapper import ToxicWrapper

# Bytes queued inside the chain before we stop reading the source. The kernel buffers
# then push back on the sender, as they would on a slow network.
QUEUE_HIGH = 2 * 1024 * 1024
QUEUE_LOW = 512 * 1024


class LinkConnection(StubConnection, Protocol):
    """The connection a link is one direction of (connection.py, which builds on this
    module), as the link and its toxics see it."""

    @property
    def closing(self) -> bool: ...

    def link_ended(self, link: Link) -> None: ...


class Link:
    __slots__ = (
        "connection", "direction", "source", "dest", "rng", "loop", "stubs",
        "queued", "bytes_in", "source_eof", "ended", "_held",
    )

    def __init__(
        self,
        connection: LinkConnection,
        direction: Direction,
        source: Endpoint,
        dest: Endpoint,
        chain: list[ToxicWrapper],
        rng: random.Random,
    ) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.queued = 0
        self.bytes_in = 0
        self.source_eof = False
        self.ended = False  # end of stream reached the destination
        self._held = False
        self.stubs: list[ToxicStub] = []
        for wrapper in chain:
            self.add(wrapper)

    # --- input from the source socket ---

    def feed(self, data: memoryview) -> bool:
        """Bytes read from the source, in the source's read buffer. True if `data` is
        still referenced afterwards (see Endpoint.send)."""
        self.bytes_in += len(data)
        if self.stubs:
            # Toxics hold chunks for a while: they get their own copy.
            self.stubs[0].push(Chunk(bytes(data), time.monotonic()))
            return False
        return self.dest.send(data)

    def feed_eof(self) -> None:
        if not self.source_eof:
            self.source_eof = True
            self._push_at(0, None)

    # --- between stubs ---

    def forward(self, stub: ToxicStub, chunk: Chunk | None) -> None:
        """What `stub` writes goes to the stub after it, or out of the link."""
        try:
            index = self.stubs.index(stub) + 1
        except ValueError:
            return  # a stub already taken out of the chain has no output
        self._push_at(index, chunk)

    def _push_at(self, index: int, chunk: Chunk | None) -> None:
        if index < len(self.stubs):
            self.stubs[index].push(chunk)
        elif chunk is None:
            if not self.ended:
                self.ended = True
                self.connection.link_ended(self)
        elif not self.ended:
            self.dest.send(chunk.data)

    # --- flow control ---

    def enqueued(self, size: int) -> None:
        self.queued += size
        if not self._held and self.queued > QUEUE_HIGH:
            self._held = True
            self.source.hold("queue")

    def dequeued(self, size: int) -> None:
        self.queued -= size
        if self._held and self.queued < QUEUE_LOW:
            self._held = False
            self.source.release("queue")

    # --- changes to the chain, driven by the API ---

    def add(self, wrapper: ToxicWrapper) -> None:
        """Append a toxic. What the last stub writes from now on goes through it."""
        stub = ToxicStub(self, wrapper, self.rng)
        self.stubs.append(stub)
        stub.start()

    async def update(self, wrapper: ToxicWrapper) -> None:
        """Restart the toxic with its new attributes; its queue and state are kept."""
        stub = self._find(wrapper)
        if stub is not None and await stub.interrupt() and not self.connection.closing:
            stub.roll()
            stub.start()

    async def remove(self, wrapper: ToxicWrapper) -> None:
        """Take a toxic out of the chain without losing what it holds or queues."""
        stub = self._find(wrapper)
        if stub is None:
            return
        running = await stub.interrupt()  # it passes on the chunk it was holding
        # Only where the toxic actually ran (toxicity): a connection it never touched
        # has lost nothing and stays open.
        if running and stub.applies and isinstance(wrapper.toxic, CleanupToxic):
            wrapper.toxic.cleanup(stub)
        index = self.stubs.index(stub)
        del self.stubs[index]
        queued = stub.drain()
        if not stub.closed:
            # Ahead of anything the previous stub writes next: nothing here awaits.
            for chunk in queued:
                self._push_at(index, chunk)

    def stop(self) -> None:
        self.ended = True
        for stub in self.stubs:
            stub.cancel()

    def _find(self, wrapper: ToxicWrapper) -> ToxicStub | None:
        for stub in self.stubs:
            if stub.wrapper is wrapper:
                return stub
        return None
