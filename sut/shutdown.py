"""Graceful shutdown on SIGTERM/SIGINT, bounded by a watchdog.

Sequence: close every WebSocket with 1001 (uvicorn's own shutdown would close them
with 1012, which clients read as "restart", not "going away"), then let uvicorn stop
accepting and finish in-flight requests, then the lifespan closes broker and pool.
If that takes longer than the bound, the watchdog exits the process anyway: an
orchestrator's SIGKILL comes next, and an exit we chose leaves a clearer log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Generator

import uvicorn

log = logging.getLogger("sut.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
FORCED_EXIT_CODE = 1


class ReplicaServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain: Callable[[], Awaitable[None]],
        bound: float,
        ignore_sigterm: bool = False,
        exit_on_sigterm: bool = False,
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.bound = bound
        self.ignore_sigterm = ignore_sigterm
        self.exit_on_sigterm = exit_on_sigterm
        self._stopping = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Replaces uvicorn's handlers, which re-raise the signal after shutdown and so
        # turn a clean stop into "killed by SIGTERM" instead of exit 0.
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            yield
        finally:
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM and self.ignore_sigterm:  # defect: only SIGKILL stops us
            log.warning("ignoring SIGTERM (defect ignore-sigterm)")
            return
        if signum == signal.SIGTERM and self.exit_on_sigterm:  # defect: no graceful shutdown at all
            log.warning("exiting at once on SIGTERM (defect exit-on-sigterm)")
            os._exit(0)
        if self._stopping:
            if signum == signal.SIGINT:
                log.warning("second SIGINT: stopping without waiting")
                self.force_exit = True
            return
        self._stopping = True
        log.info("%s received: shutting down (bound %.1fs)", name, self.bound)
        watchdog = threading.Timer(self.bound, _force_exit, args=(self.bound,))
        watchdog.daemon = True
        watchdog.start()
        asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.drain()
        except Exception:  # shutdown goes on even if closing sockets failed
            log.exception("closing sockets failed")
        finally:
            self.should_exit = True


def _force_exit(bound: float) -> None:
    sys.stderr.write(f"sut: graceful shutdown did not finish within {bound:.1f}s; exiting now\n")
    sys.stderr.flush()
    os._exit(FORCED_EXIT_CODE)
