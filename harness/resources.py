"""Resource sampling: CPU and memory of every component, and each replica's connections
to its dependencies, sampled from outside the processes while a run goes on.

A thread in the harness wakes every `interval` seconds and writes, into the run
directory, one `resources.csv` row per component (CPU in cores over the interval,
summed over the component's processes, and its busiest process; resident memory) and
one `dependency_connections.csv` row per replica and dependency. Columns are in
reports/records.py; docs/architecture.md describes them.

What to sample comes from small sources, so a backend only has to say where its
processes are: `StateFileProcesses` reads the pids from the stack's state file (the
embedded backend), `LoadProcesses` finds the load generator's processes, and a
connection source counts connections (`ProxyConnections` asks the fault proxy, which
holds them; `SocketConnections` reads the replica's sockets with psutil). A Docker
backend can add a source of container stats without touching the sampler.

CPU is the change of each process's user + system time between two samples. A process
that starts between samples counts from its start; one that exits between samples
loses its last partial interval (Postgres backends that live less than a second).
Memory is RSS summed over the processes, so pages they share (Postgres's shared
buffers) count once per process that touched them.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from reports.records import DEP_CONN_COLUMNS, DEP_CONN_FILE, RESOURCE_COLUMNS, RESOURCES_FILE

DEFAULT_INTERVAL = 1.0
DEPENDENCIES = ("postgres", "redis")
MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Watched:
    """A process to sample as (part of) a component.

    `tree`: its descendants belong to the component too (nginx workers, Postgres
    backends). `split`: every process of the tree is a component of its own, named by
    `name_of(pid)` (the load generator's processes, each single-threaded)."""

    component: str
    kind: str
    pid: int
    tree: bool = True
    split: bool = False
    name_of: Callable[[int], str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ConnectionCount:
    replica: str
    dependency: str
    connections: int
    source: str  # proxy | socket


class ProcessSource(Protocol):
    def watched(self) -> list[Watched]:
        """The processes to sample now (asked at every sample: replicas restart)."""


class ConnectionSource(Protocol):
    def counts(self) -> list[ConnectionCount]:
        """Each replica's open connections to each dependency, now."""


# -- sources --------------------------------------------------------------------------


class StateFileProcesses:
    """Components of a stack from its state file: dependencies, nginx, fault proxy,
    replicas. Re-read when the file changes (a restarted replica has a new pid)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mtime: float | None = None
        self._raw: dict = {}

    def state(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._raw = json.loads(self.path.read_text())
                self._mtime = mtime
        except (OSError, ValueError):
            pass  # mid-replace or gone: keep the last good state
        return self._raw

    def watched(self) -> list[Watched]:
        raw = self.state()
        out = [Watched(c["name"], c.get("kind") or c["name"], int(c["pid"]))
               for c in raw.get("components", []) if c.get("pid")]
        out += [Watched(r["name"], "replica", int(r["pid"])) for r in raw.get("replicas", []) if r.get("pid")]
        return out


class LoadProcesses:
    """The load generator: its root process and the workers it forks, each its own
    component (`load-w0`, `load-w1`, `load-master`). Worker names come from the
    meta.json each load process writes into records/<worker>/ (it holds its pid)."""

    def __init__(self, pid: int, records_dir: Path, forks: bool = False) -> None:
        self.pid = pid
        self.records_dir = Path(records_dir)
        self.forks = forks  # --processes N: the root is a master that runs no users
        self._names: dict[int, str] = {}
        self._seen_meta = 0

    def name_of(self, pid: int) -> str:
        if pid not in self._names:
            self._read_meta()
        if pid in self._names:
            return f"load-{self._names[pid]}"
        if pid == self.pid:
            return "load-master" if self.forks else "load-w0"
        return f"load-{pid}"

    def _read_meta(self) -> None:
        try:
            metas = list(self.records_dir.glob("*/meta.json"))
        except OSError:
            return
        if len(metas) == self._seen_meta:
            return
        for path in metas:
            try:
                meta = json.loads(path.read_text())
                self._names[int(meta["pid"])] = str(meta.get("worker") or path.parent.name)
            except (OSError, ValueError, KeyError, TypeError):
                continue
        self._seen_meta = len(metas)

    def watched(self) -> list[Watched]:
        return [Watched("load", "load", self.pid, tree=True, split=True, name_of=self.name_of)]


class FixedProcesses:
    """Processes known up front, such as the harness itself."""

    def __init__(self, items: Iterable[Watched]) -> None:
        self.items = list(items)

    def watched(self) -> list[Watched]:
        return list(self.items)


class ProxyConnections:
    """The fault proxy holds every connection a replica has to a dependency: ask it.
    Proxy `postgres-r2` carries r2's connections to Postgres."""

    def __init__(self, state: StateFileProcesses, timeout: float = 1.0) -> None:
        self.state = state
        self.timeout = timeout
        self.available = True  # false once the proxy said it has no such endpoint

    def counts(self) -> list[ConnectionCount]:
        url = self.state.state().get("proxy_api_url")
        if not url or not self.available:
            return []
        try:
            with urllib.request.urlopen(f"{url}/connections", timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # a real Toxiproxy: no connection counts
                self.available = False
            return []
        except (OSError, ValueError):
            return []  # paused or restarting: no sample this time
        out = []
        for name, n in sorted(body.items()):
            dependency, _, replica = str(name).partition("-")
            if dependency in DEPENDENCIES and replica:
                out.append(ConnectionCount(replica, dependency, int(n), "proxy"))
        return out


class SocketConnections:
    """Without fault proxies (or with a proxy that does not count): the replica's own
    established TCP connections to the dependency's port (or its proxy's), by psutil.
    Costs a read of the machine's whole socket table per replica."""

    def __init__(self, state: StateFileProcesses) -> None:
        self.state = state

    def counts(self) -> list[ConnectionCount]:
        raw = self.state.state()
        ports = {c["name"]: c.get("port") for c in raw.get("components", []) if c["name"] in DEPENDENCIES}
        proxies = {p["name"]: int(str(p["listen"]).rsplit(":", 1)[1]) for p in raw.get("proxies", [])
                   if ":" in str(p.get("listen", ""))}
        out = []
        for rep in raw.get("replicas", []):
            if not rep.get("pid"):
                continue
            try:
                conns = psutil.Process(int(rep["pid"])).net_connections(kind="tcp")
            except (psutil.Error, OSError):
                continue
            remote = [c.raddr.port for c in conns if c.raddr and c.status == psutil.CONN_ESTABLISHED]
            for dep in DEPENDENCIES:
                port = proxies.get(f"{dep}-{rep['name']}", ports.get(dep))
                if port:
                    out.append(ConnectionCount(rep["name"], dep, sum(1 for p in remote if p == port), "socket"))
        return out


class FirstConnections:
    """The first source that answers (the proxy's count, else the sockets')."""

    def __init__(self, *sources: ConnectionSource) -> None:
        self.sources = sources

    def counts(self) -> list[ConnectionCount]:
        for source in self.sources:
            found = source.counts()
            if found:
                return found
        return []


# -- the sampler ------------------------------------------------------------------------


@dataclass
class SamplerStats:
    """What sampling cost: CPU of the sampler thread, per sample."""

    samples: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    interval_s: float = DEFAULT_INTERVAL
    cores: int = 0
    errors: int = 0

    def to_dict(self) -> dict:
        per = self.cpu_s / self.samples if self.samples else None
        return {"samples": self.samples, "cpu_s": round(self.cpu_s, 4), "cpu_ms_per_sample":
                round(per * 1000, 3) if per is not None else None, "interval_s": self.interval_s,
                "cores": self.cores, "errors": self.errors,
                "cpu_share_of_a_core": round(self.cpu_s / self.wall_s, 5) if self.wall_s else None}


class ResourceSampler:
    """Samples the sources every `interval` seconds on a daemon thread.

    `start()` takes the baseline; each later sample writes rows for the interval since
    the one before. `stop()` takes a last sample and closes the files; idempotent."""

    def __init__(self, run_dir: Path, sources: Sequence[ProcessSource] = (),
                 connections: ConnectionSource | None = None, interval: float = DEFAULT_INTERVAL) -> None:
        self.run_dir = Path(run_dir)
        self.sources: list[ProcessSource] = list(sources)
        self.connections = connections
        self.interval = interval
        self.stats = SamplerStats(interval_s=interval, cores=psutil.cpu_count() or 1)
        self._cpu: dict[tuple[int, float], float] = {}  # (pid, create time) -> user+system s
        self._last: float | None = None
        self._machine: tuple[float, float] | None = None  # busy s, total s (all cores)
        self._percpu: list[tuple[float, float]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._files: list = []
        self._resources: csv.writer | None = None
        self._conns: csv.writer | None = None
        self._started_wall = 0.0

    def add_source(self, source: ProcessSource) -> None:
        with self._lock:
            self.sources.append(source)

    # -- lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._open()
        self._started_wall = time.monotonic()
        self.sample()  # the baseline
        self._thread = threading.Thread(target=self._loop, name="resource-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> SamplerStats:
        if self._thread is None:
            return self.stats
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        self.sample()
        self.stats.wall_s = time.monotonic() - self._started_wall
        for fh in self._files:
            fh.close()
        self._files = []
        return self.stats

    def _open(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name, columns, attr in ((RESOURCES_FILE, RESOURCE_COLUMNS, "_resources"),
                                    (DEP_CONN_FILE, DEP_CONN_COLUMNS, "_conns")):
            path = self.run_dir / name
            new = not path.exists() or path.stat().st_size == 0
            fh = open(path, "a", newline="", encoding="utf-8")
            writer = csv.writer(fh)
            if new:
                writer.writerow(columns)
            self._files.append(fh)
            setattr(self, attr, writer)

    def _loop(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.sample()
            except Exception:  # a sampling hiccup must never take the run down
                self.stats.errors += 1
            next_at += self.interval
            if next_at < time.monotonic():  # fell behind (machine stalled): no burst of samples
                next_at = time.monotonic() + self.interval

    # -- one sample

    def sample(self) -> None:
        with self._lock:
            started = time.thread_time()
            now = time.time()
            rows = self._process_rows(now)
            conns = self.connections.counts() if self.connections is not None else []
            self._write(now, rows, conns)
            self._last = now
            self.stats.cpu_s += time.thread_time() - started
            self.stats.samples += 1

    def _process_rows(self, now: float) -> list[tuple]:
        children = self._children_map()
        dt = now - self._last if self._last is not None else None
        rows: list[tuple] = []
        ours = 0.0
        seen: set[int] = set()
        for source in self.sources:
            for w in source.watched():
                pids = self._tree(w.pid, children) if w.tree else [w.pid]
                pids = [p for p in pids if p not in seen]
                seen.update(pids)
                groups = ([(w.name_of(p) if w.name_of else f"{w.component}-{p}", [p]) for p in pids]
                          if w.split else [(w.component, pids)])
                for name, members in groups:
                    row = self._component(now, dt, name, w.kind, members)
                    if row is not None:
                        rows.append(row)
                        ours += row[4] if row[4] == row[4] else 0.0  # NaN on the baseline
        machine, other = self._machine_rows(now, dt, ours)
        if dt is None:
            return []
        return rows + [machine, other]

    def _component(self, now: float, dt: float | None, name: str, kind: str,
                   pids: list[int]) -> tuple | None:
        cpu_sum, cpu_max, rss, alive = 0.0, 0.0, 0, 0
        for pid in pids:
            proc = self._process(pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    mem = proc.memory_info().rss
                    created = proc.create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive += 1
            rss += mem
            total = times.user + times.system
            key = (pid, created)
            before = self._cpu.get(key)
            if before is None and self._last is not None and created >= self._last - 0.01:
                before = 0.0  # born since the last sample: all its CPU is this interval's
            self._cpu[key] = total
            if before is not None and dt:
                used = max(0.0, total - before) / dt
                cpu_sum += used
                cpu_max = max(cpu_max, used)
        if alive == 0:
            return None
        if dt is None:
            return (now, name, kind, alive, float("nan"), float("nan"), rss / MB)
        return (now, name, kind, alive, round(cpu_sum, 4), round(cpu_max, 4), round(rss / MB, 2))

    @staticmethod
    def _process(pid: int) -> psutil.Process | None:
        # A fresh object each time (as cheap as a cached one): a reused pid is a new process.
        try:
            return psutil.Process(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def _machine_rows(self, now: float, dt: float | None, ours: float) -> tuple[tuple, tuple]:
        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        total = sum(t)
        per = [(sum(c) - c.idle - getattr(c, "iowait", 0.0), sum(c)) for c in psutil.cpu_times(percpu=True)]
        busy_cores = busiest = float("nan")
        if self._machine is not None:
            d_total = total - self._machine[1]
            d_busy = (total - idle) - self._machine[0]
            cores = self.stats.cores
            busy_cores = cores * d_busy / d_total if d_total > 0 else 0.0
            shares = [(b - pb) / (tt - pt) for (b, tt), (pb, pt) in zip(per, self._percpu or per) if tt - pt > 0]
            busiest = max(shares) if shares else 0.0
        self._machine = (total - idle, total)
        self._percpu = per
        vm = psutil.virtual_memory()
        used_mb = (vm.total - vm.available) / MB
        machine = (now, "machine", "machine", self.stats.cores, _r(busy_cores), _r(busiest), round(used_mb, 1))
        other = (now, "other", "other", float("nan"), _r(max(0.0, busy_cores - ours)), float("nan"), float("nan"))
        return machine, other

    @staticmethod
    def _children_map() -> dict[int, list[int]]:
        """Parent -> children of every process, in one pass over /proc (a fifth of the
        cost of psutil.process_iter, which checks each process's identity too)."""
        children: dict[int, list[int]] = {}
        if not os.path.isdir("/proc/self"):
            for proc in psutil.process_iter(["ppid"]):
                children.setdefault(proc.info.get("ppid") or 0, []).append(proc.pid)
            return children
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    data = fh.read()
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                ppid = int(data[data.rfind(b")") + 2:].split(b" ", 2)[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
        return children

    @staticmethod
    def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, ()))
        return out

    def _write(self, now: float, rows: list[tuple], conns: list[ConnectionCount]) -> None:
        if self._resources is None:
            return
        if rows:
            # NaN as an empty field: the schema's null (docs/architecture.md).
            self._resources.writerows(tuple(None if v != v else v for v in row) for row in rows)
        if conns and self._last is not None:
            self._conns.writerows((now, c.replica, c.dependency, c.connections, c.source) for c in conns)
        for fh in self._files:
            fh.flush()


def _r(value: float) -> float:
    return round(value, 4) if value == value else value


def stack_sampler(run_dir: Path, state_file: Path, interval: float = DEFAULT_INTERVAL) -> ResourceSampler:
    """The sampler of an embedded stack: its components from the state file, the
    harness itself, connections from the fault proxy (else the replicas' sockets)."""
    state = StateFileProcesses(state_file)
    harness = FixedProcesses([Watched("harness", "harness", os.getpid(), tree=False)])
    return ResourceSampler(run_dir, [state, harness], FirstConnections(ProxyConnections(state),
                                                                      SocketConnections(state)), interval)
