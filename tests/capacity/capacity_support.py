"""Helpers for the capacity tests: synthetic resource samples and generator health
written into a synthetic run directory (tests/synthetic.py builds the load records)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from reports.records import DEP_CONN_COLUMNS, DEP_CONN_FILE, LOADGEN_COLUMNS, RESOURCE_COLUMNS, RESOURCES_FILE
from tests.synthetic import START

COMPONENTS = (("r1", "replica", 1), ("r2", "replica", 1), ("r3", "replica", 1), ("nginx", "nginx", 3),
              ("redis", "redis", 1), ("postgres", "postgres", 8), ("load-w0", "load", 1))


def write_resources(run_dir: Path, seconds: int, cpu: Callable[[str, int], float], *,
                    connections: Callable[[str, str, int], int] = lambda replica, dep, t: 2,
                    cores: int = 2) -> None:
    """One sample per second for `seconds`, CPU per (component, second) from `cpu`."""
    with open(run_dir / RESOURCES_FILE, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(RESOURCE_COLUMNS)
        for t in range(1, seconds + 1):
            ours = 0.0
            for name, kind, procs in COMPONENTS:
                c = cpu(name, t)
                ours += c
                w.writerow((START + t, name, kind, procs, c, min(1.0, c), 50.0 + t))
            w.writerow((START + t, "machine", "machine", cores, min(cores, ours + 0.1), 1.0, 4000.0))
            w.writerow((START + t, "other", "other", "", 0.1, "", ""))
    with open(run_dir / DEP_CONN_FILE, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(DEP_CONN_COLUMNS)
        for t in range(1, seconds + 1):
            for replica in ("r1", "r2", "r3"):
                for dep in ("postgres", "redis"):
                    w.writerow((START + t, replica, dep, connections(replica, dep, t), "proxy"))


def write_loadgen(run_dir: Path, seconds: int, cpu: Callable[[str, int], float],
                  lag_ms: Callable[[str, int], float] = lambda worker, t: 2.0) -> None:
    """records/<worker>/loadgen.csv for every worker directory the run has."""
    for worker_dir in sorted((run_dir / "records").iterdir()):
        worker = worker_dir.name
        with open(worker_dir / "loadgen.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(LOADGEN_COLUMNS)
            for t in range(1, seconds + 1):
                lag = lag_ms(worker, t)
                w.writerow((START + t, cpu(worker, t), lag / 2, lag))
