"""The load process's own health: its CPU, and how late its event loop runs.

Every timestamp the load generator records (a send, a frame's arrival) is taken by a
greenlet when the gevent loop gets to it. When the process is short of CPU (its own
work, or the machine's), the loop falls behind and every time it records is late by
that much: the latency it reports is then the generator's, not the app's. A probe
greenlet sleeps `PERIOD` over and over and measures how much longer each sleep took
than asked; once a second it writes loadgen.csv (`ts,cpu,lag_mean_ms,lag_max_ms`,
reports/records.py) with that lag and the process's CPU (cores, over the second).
reports/measurement.py turns these into the run's measurement validity.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent

PERIOD = 0.05
EVERY = 1.0


def probe_loop(write: Callable[[tuple], None], period: float = PERIOD, every: float = EVERY) -> None:
    """Runs until killed (the plugin kills it at test stop)."""
    clock = time.perf_counter
    last_wall, last_cpu = clock(), time.process_time()
    lags: list[float] = []
    while True:
        before = clock()
        gevent.sleep(period)
        now = clock()
        lags.append(max(0.0, now - before - period))
        if now - last_wall >= every:
            cpu = time.process_time()
            write((time.time(), round((cpu - last_cpu) / (now - last_wall), 4),
                   round(1000 * sum(lags) / len(lags), 3), round(1000 * max(lags), 3)))
            last_wall, last_cpu, lags = now, cpu, []
