"""Helpers of the Docker tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMINGS: dict[str, float] = {}  # printed in the terminal summary


def gauntlet(*args: str, cwd: Path, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def run_labels(client) -> set[str]:
    """Runs that still have a container, network or volume."""
    from harness.docker.topology import RUN_LABEL

    flt = {"label": RUN_LABEL}
    # The low-level list: no inspect per container, which races with a removal under way.
    found = {c["Labels"][RUN_LABEL] for c in client.api.containers(all=True, filters=flt)}
    found |= {n.attrs["Labels"][RUN_LABEL] for n in client.networks.list(filters=flt)}
    found |= {v.attrs["Labels"][RUN_LABEL] for v in client.volumes.list(filters=flt)}
    return found


def published_addresses(client, run: str) -> list[str]:
    """Every host address a container of the run publishes a port on."""
    from harness.docker.topology import RUN_LABEL

    out = []
    for c in client.containers.list(filters={"label": f"{RUN_LABEL}={run}"}):
        for bindings in (c.attrs["NetworkSettings"]["Ports"] or {}).values():
            out += [b["HostIp"] for b in bindings or []]
    return out


def read_state(path: Path) -> dict:
    return json.loads(path.read_text())
