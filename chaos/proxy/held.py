"""A listener that never answers: new connects hang, as when a network drops packets.

A proxy cannot refuse to complete a TCP handshake from user space: the kernel answers
a SYN for any listening socket, before accept (Toxiproxy's known limit: its `timeout`
toxic accepts the connection, then hangs it). But the kernel drops a SYN when the
listener's accept queue is full. So this listens with a backlog of 0, fills the one
slot with a connection of its own, and never accepts: every other client's SYN is
dropped and retransmitted, its connect hangs until the client's own timeout, exactly
as behind a partition. Closing it lets the real listener take the port again; clients
still retransmitting their SYN then connect, as when the network heals.
"""

from __future__ import annotations

import select
import socket

from .addresses import HostPort

FILL_TIMEOUT = 2.0


class HeldListener:
    def __init__(self, address: HostPort) -> None:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.filler = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((address.host, address.port))
            self.listener.listen(0)
            # The filler's handshake completes in the kernel (loopback, or the proxy's own
            # address): once it is writable, the one slot of the queue is taken.
            self.filler.setblocking(False)
            self.filler.connect_ex(self.listener.getsockname()[:2])
            _, writable, _ = select.select([], [self.filler], [], FILL_TIMEOUT)
            if not writable or self.filler.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                raise OSError("could not fill the held listener's accept queue")
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        self.filler.close()
        self.listener.close()
