"""Stack backends: one protocol, chosen by name.

- `local`: real processes on this machine (harness/stack.py, the default)
- `docker`: containers of a Docker daemon through the docker SDK (harness/docker/stack.py)
- `swarm`: replicas as a Docker Swarm service (harness/docker/swarm.py)

Every backend writes the same state file, and offers what the fault handle
(chaos/target.py `LocalHandle`) and the control API call, so load, chaos and reports
never ask which one runs.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from harness.ports import LOOPBACK
from harness.spec import SpecError, StackSpec
from common.state import StackState

Progress = Callable[[str], None]


class StackBackend(Protocol):
    """Up, down, state, replica and dependency control."""

    spec: StackSpec
    run_dir: Path | None
    drained: set[str]
    control_url: str
    control_token: str

    def up(self) -> StackState: ...

    def down(self) -> None: ...

    def state(self) -> StackState: ...

    def publish_state(self) -> StackState: ...

    def replica(self, name: str): ...

    def signal_replica(self, name: str, signum: int) -> None: ...

    def restart_replica(self, name: str, timeout: float = 30.0, graceful: bool = True) -> None: ...

    def revive_replica(self, name: str, timeout: float = 30.0) -> bool: ...

    def add_replica(self, timeout: float = 30.0) -> str: ...

    def remove_replica(self, name: str) -> None: ...

    def drain(self, name: str) -> None: ...

    def undrain(self, name: str) -> None: ...

    def dependency(self, name: str): ...

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        """SIGKILL the server; without `keep_data` it restarts empty (Redis only). What
        the app must see meanwhile is chaos/faults/contract.py."""

    def restart_dependency(self, name: str, timeout: float = 30.0) -> None: ...

    def track_load(self, proc) -> None:
        """Hand the load generator (a ChildProcess) to the reaper: if the harness dies, the
        reaper stops the load before the stack (harness/reaper.py)."""


def _local(spec: StackSpec, progress: Progress) -> StackBackend:
    from harness.stack import LocalStack

    return LocalStack(spec, progress=progress)


def _docker(spec: StackSpec, progress: Progress) -> StackBackend:
    from harness.docker.stack import DockerStack

    return DockerStack(spec, progress=progress)


def _swarm(spec: StackSpec, progress: Progress) -> StackBackend:
    from harness.docker.swarm import SwarmStack

    return SwarmStack(spec, progress=progress)


BACKENDS: dict[str, Callable[[StackSpec, Progress], StackBackend]] = {
    "local": _local, "docker": _docker, "swarm": _swarm,
}


def _quiet(_: str) -> None:
    pass


def make_stack(spec: StackSpec, progress: Progress = _quiet) -> StackBackend:
    try:
        factory = BACKENDS[spec.backend]
    except KeyError:
        raise SpecError(f"unknown backend {spec.backend!r}: choose one of {', '.join(BACKENDS)}") from None
    return factory(spec, progress)


def preflight(spec: StackSpec) -> None:
    """Checks that need the outside world, before anything starts (one clear line each)."""
    if spec.lb_port is not None:
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, spec.lb_port))
            except OSError:
                raise SpecError(f"--port {spec.lb_port}: {LOOPBACK}:{spec.lb_port} is in use") from None
    if spec.backend in ("docker", "swarm"):
        from harness.docker.stack import preflight as docker_preflight

        docker_preflight(spec)
    if spec.backend == "swarm":
        from harness.docker.swarm import preflight as swarm_preflight

        swarm_preflight(spec)
