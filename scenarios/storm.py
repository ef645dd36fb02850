"""Reconnect storms: at given times every socket of the process drops and reconnects.

This is what a load balancer restart or a network blip does to a realtime service:
thousands of handshakes, auth checks and resume replays in the same second. Times are
relative to the test start on each process (workers start within milliseconds of
each other); `--storm-jitter` spreads the reconnects when the storm should be softer.
"""

from __future__ import annotations

import logging
import time

import gevent

from scenarios.process import LoadProcess

log = logging.getLogger("gauntlet.load")


def run_storms(proc: LoadProcess, started: float) -> None:
    """Greenlet body: one storm per --storm-at time; bounded by the list."""
    jitter = proc.settings.storm_jitter
    rng = proc.rng()
    for at in proc.settings.storm_at:
        wait = started + at - time.time()
        if wait > 0:
            gevent.sleep(wait)
        subs = list(proc.subscriptions)
        log.info("reconnect storm at +%.1fs: dropping %d sockets", at, len(subs))
        for sub in subs:
            sub.storm(rng.uniform(0, jitter) if jitter > 0 else 0.0)
