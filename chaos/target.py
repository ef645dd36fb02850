"""The seam between faults and a stack: what a fault may do to it, and two ways to do it.

Faults never touch `LocalStack` or the control API directly; they talk to a
`StackHandle`:

- `LocalHandle` wraps a `LocalStack` in this process (`gauntlet run`, the pytest
  plugin): calls go straight to the supervisor.
- `RemoteHandle` drives a stack that `gauntlet up` supervises in another process
  (`gauntlet chaos` from a second terminal): signals go straight to the replica's pid,
  toxics straight to the fault proxy's API, and whatever needs the supervisor (it is
  the children's parent: restart, scale, drain, crash a dependency) goes through the
  harness's control API. On the container backends (docker, swarm) signals go through
  the control API too: the supervisor turns them into Docker API calls (kill with a
  signal; STOP and CONT freeze and thaw the container). Its view of the stack is re-read on every call, so it sees
  restarts and scaling done meanwhile.

`Topology` is the static picture that timeline validation needs (replica names,
broker, whether fault proxies exist), built from a spec before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from common.control import call
from common.liveness import pid_alive
from common.state import StackState

DEPENDENCIES = ("postgres", "redis")
# Which dependency carries each reference broker's fan-out (target `broker` resolves to it).
BROKER_DEPENDENCY = {"redis": "redis", "redis-streams": "redis", "postgres": "postgres"}


@dataclass(frozen=True)
class Topology:
    """What a timeline is validated against: known before the stack starts."""

    replicas: tuple[str, ...]
    broker: str
    fault_proxies: bool = True
    redis_persistent: bool = True  # does Redis keep its data across a crash (append-only file)?

    @classmethod
    def from_spec(cls, spec) -> "Topology":
        """From a `harness.spec.StackSpec`: replicas are named r1..rN in start order."""
        return cls(tuple(f"r{i}" for i in range(1, spec.replicas + 1)), spec.broker, spec.fault_proxies,
                   spec.redis_persistence != "none")

    @classmethod
    def from_state(cls, state: StackState) -> "Topology":
        return cls(tuple(r.name for r in state.replicas), state.broker, bool(state.proxy_api_url),
                   state.spec.get("redis_persistence", "aof") != "none")

    def broker_dependency(self) -> str:
        dep = BROKER_DEPENDENCY.get(self.broker)
        if dep is None:
            raise ValueError(f"target 'broker': broker {self.broker!r} has no dependency process to fault "
                             f"(name postgres or redis instead)")
        return dep


@runtime_checkable
class StackHandle(Protocol):
    """Everything a fault may do to a stack."""

    def topology(self) -> Topology: ...

    def run_dir(self) -> Path | None: ...

    def replica_names(self) -> list[str]: ...

    def replica_pid(self, name: str) -> int | None: ...

    def replica_alive(self, name: str) -> bool: ...

    def signal_replica(self, name: str, signum: int) -> None: ...

    def restart_replica(self, name: str, graceful: bool = True) -> None: ...

    def revive_replica(self, name: str) -> bool:
        """Start a replica again if (and only if) it is dead; True if it was restarted."""

    def add_replica(self) -> str: ...

    def remove_replica(self, name: str) -> None: ...

    def drain(self, name: str) -> None: ...

    def undrain(self, name: str) -> None: ...

    def drained(self) -> set[str]: ...

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        """SIGKILL the dependency's server; without `keep_data` it will restart empty.

        Only the server: what the app sees meanwhile (connects refused through the fault
        proxies too) is the crash fault's business (chaos/faults/crash.py)."""

    def restart_dependency(self, name: str) -> None:
        """Start a dependency's server again if it is dead and wait until it answers;
        one that runs is left alone."""

    def dependency_alive(self, name: str) -> bool: ...

    def dependency_url(self, name: str) -> str:
        """The dependency's own URL (not through a fault proxy), credentials included."""

    def restart_delay(self) -> float | None: ...

    def set_restart_delay(self, delay: float | None) -> None: ...

    def proxy_api_url(self) -> str:
        """The fault proxy's Toxiproxy API, or '' when the stack runs without proxies."""


def signal_group(pid: int, signum: int) -> None:
    """Signal a replica the way the supervisor does: its whole process group (workers too).

    Replicas are session leaders, so pid == pgid; anything else gets a plain kill.
    """
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


class LocalHandle:
    """A `LocalStack` supervised by this process."""

    def __init__(self, stack) -> None:
        self.stack = stack

    def topology(self) -> Topology:
        return Topology(tuple(self.stack.replicas), self.stack.spec.broker, self.stack.proxy is not None,
                        self.stack.spec.redis_persistence != "none")

    def run_dir(self) -> Path | None:
        return self.stack.run_dir

    def replica_names(self) -> list[str]:
        return list(self.stack.replicas)

    def replica_pid(self, name: str) -> int | None:
        return self.stack.replica(name).pid

    def replica_alive(self, name: str) -> bool:
        return self.stack.replica(name).alive()

    def signal_replica(self, name: str, signum: int) -> None:
        self.stack.signal_replica(name, signum)

    def restart_replica(self, name: str, graceful: bool = True) -> None:
        self.stack.restart_replica(name, graceful=graceful)

    def revive_replica(self, name: str) -> bool:
        return self.stack.revive_replica(name)

    def add_replica(self) -> str:
        return self.stack.add_replica()

    def remove_replica(self, name: str) -> None:
        self.stack.remove_replica(name)

    def drain(self, name: str) -> None:
        self.stack.drain(name)

    def undrain(self, name: str) -> None:
        self.stack.undrain(name)

    def drained(self) -> set[str]:
        return set(self.stack.drained)

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        self.stack.crash_dependency(name, keep_data=keep_data)

    def restart_dependency(self, name: str) -> None:
        self.stack.restart_dependency(name)

    def dependency_alive(self, name: str) -> bool:
        return self.stack.dependency(name).alive()

    def dependency_url(self, name: str) -> str:
        # From the state every backend publishes: the URL a client on this host uses.
        return self.stack.state().component(name).url

    def restart_delay(self) -> float | None:
        return self.stack.spec.restart_delay

    def set_restart_delay(self, delay: float | None) -> None:
        self.stack.spec.restart_delay = delay

    def proxy_api_url(self) -> str:
        return self.stack.proxy.api_url if self.stack.proxy is not None else ""


class RemoteHandle:
    """A stack supervised by another process, found through its state file."""

    def __init__(self, state: StackState) -> None:
        if not state.control_url:
            raise ValueError("the stack's state file has no control API; was it started by `gauntlet up`?")
        self.control_url = state.control_url
        self.token = state.control_token
        self._state = state
        # Container backends: pids are the daemon's, and signals are Docker API calls.
        self.containers = state.spec.get("backend", "local") != "local"

    def _call(self, op: str, **args) -> dict:
        return call(self.control_url, self.token, op, **args)

    def state(self) -> StackState:
        """The supervisor's live view (the state file lags behind some changes)."""
        self._state = StackState.from_json(self._call("state", timeout=10.0))
        return self._state

    def topology(self) -> Topology:
        return Topology.from_state(self.state())

    def run_dir(self) -> Path | None:
        return Path(self._state.run_dir) if self._state.run_dir else None

    def replica_names(self) -> list[str]:
        return [r.name for r in self.state().replicas]

    def _replica(self, name: str):
        try:
            return self.state().replica(name)
        except KeyError:
            known = ", ".join(r.name for r in self._state.replicas) or "none"
            raise KeyError(f"no replica named {name!r} (replicas: {known})") from None

    def replica_pid(self, name: str) -> int | None:
        replica = self._replica(name)
        if self.containers:
            return replica.pid if replica.status != "exited" else None
        pid = replica.pid
        return pid if pid and pid_alive(pid) else None

    def replica_alive(self, name: str) -> bool:
        return self.replica_pid(name) is not None

    def signal_replica(self, name: str, signum: int) -> None:
        if self.containers:
            self._call("signal", replica=name, signum=int(signum))
            return
        pid = self.replica_pid(name)
        if pid is not None:
            signal_group(pid, signum)

    def restart_replica(self, name: str, graceful: bool = True) -> None:
        self._call("restart", replica=name, graceful=graceful)

    def revive_replica(self, name: str) -> bool:
        return bool(self._call("revive", replica=name)["revived"])

    def add_replica(self) -> str:
        return self._call("add_replica")["replica"]

    def remove_replica(self, name: str) -> None:
        self._call("remove_replica", replica=name)

    def drain(self, name: str) -> None:
        self._call("drain", replica=name)

    def undrain(self, name: str) -> None:
        self._call("undrain", replica=name)

    def drained(self) -> set[str]:
        return {r.name for r in self.state().replicas if r.status == "drained"}

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        self._call("crash_dependency", dependency=name, keep_data=keep_data)

    def restart_dependency(self, name: str) -> None:
        self._call("restart_dependency", dependency=name)

    def dependency_alive(self, name: str) -> bool:
        try:
            comp = self.state().component(name)
        except KeyError:
            raise KeyError(f"no dependency named {name!r} (dependencies: {', '.join(DEPENDENCIES)})") from None
        return bool(comp.pid) and (self.containers or pid_alive(comp.pid))

    def dependency_url(self, name: str) -> str:
        try:
            return self.state().component(name).url
        except KeyError:
            raise KeyError(f"no dependency named {name!r} (dependencies: {', '.join(DEPENDENCIES)})") from None

    def restart_delay(self) -> float | None:
        return self.state().spec.get("restart_delay")

    def set_restart_delay(self, delay: float | None) -> None:
        self._call("set_restart_delay", delay=delay)

    def proxy_api_url(self) -> str:
        return self._state.proxy_api_url


__all__ = ["DEPENDENCIES", "LocalHandle", "RemoteHandle", "StackHandle", "Topology", "signal_group"]
