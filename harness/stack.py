"""LocalStack: a multi-replica stack of real local processes behind nginx.

```
 clients ──► nginx (127.0.0.1) ──► replica r1..rN (app command template)
                                     ├──► fault proxy redis-rN ──► Redis
                                     └──► fault proxy postgres-rN ──► Postgres
```

One object owns every child: it starts them under one deadline, watches them, restarts
them on request (or by restart policy), and tears everything down in reverse order. A
reaper process cleans up if this process dies without `down()`. Mutating methods hold
one lock, so the control API thread and a chaos timeline can call them concurrently.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from harness.lifecycle import NON_ENDING_SIGNALS, ReplicaLifecycle
from harness.ports import LOOPBACK, free_port
from harness.process import ChildProcess, KillPolicy, StartError
from harness.reaper import read_manifest, write_manifest
from harness.rundir import new_run_dir, update_run_meta
from harness.servers.faultproxy import FaultProxyServer
from harness.servers.limits import raise_open_files
from harness.servers.nginx import NginxServer, Upstream
from harness.servers.postgres import PostgresServer
from harness.servers.redis import RedisServer
from harness.servers.replica import Replica
from harness.spec import StackSpec
from common.state import ComponentState, ProxyState, ReplicaState, StackState, write_state
from common.replica_events import REMOVE, RESTART, SIGNAL, STOP, TEARDOWN

Progress = Callable[[str], None]
DEPENDENCIES = ("postgres", "redis")


def _quiet(_: str) -> None:
    pass


class LocalStack:
    def __init__(self, spec: StackSpec, progress: Progress = _quiet) -> None:
        spec.validate()
        self.spec = spec
        self.progress = progress
        self.lock = threading.RLock()
        self.secret = secrets.token_hex(16)
        self.publisher_key = secrets.token_hex(16)
        self.control_token = secrets.token_hex(16)
        self.run_dir: Path | None = None
        self.tmp: Path | None = None
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self.nginx: NginxServer | None = None
        self.proxy: FaultProxyServer | None = None
        self.replicas: dict[str, Replica] = {}
        self.drained: set[str] = set()
        self.started = 0.0
        self.control_url = ""
        self._next_index = 1
        self._reaper: subprocess.Popen | None = None
        self._manifest: Path | None = None
        self._manifest_lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._restart_timers: dict[str, threading.Timer] = {}
        self._exit_listeners: list[Callable[[str, int | None], None]] = []
        self.lifecycle = ReplicaLifecycle(None)
        self._up = False

    # ------------------------------------------------------------------ lifecycle

    def up(self) -> StackState:
        """Bring everything up and wait until every replica is ready; on failure, tear down."""
        t0 = time.monotonic()
        deadline = t0 + self.spec.startup_timeout
        # Before any child starts: each inherits soft = hard open files (a socket each).
        raise_open_files()
        try:
            self._prepare_dirs()
            self._start_reaper()
            self._start_dependencies(deadline)
            if self.spec.fault_proxies:
                self._start_proxy(deadline)
            names = [self._new_name() for _ in range(self.spec.replicas)]
            for name in names:
                self._spawn_replica(name)
            for name in names:
                self.replicas[name].wait_healthy(deadline)
            self._wait_ready(names, deadline)
            self.progress(f"replicas {', '.join(names)} ready")
            self._start_nginx(deadline)
        except BaseException:
            self.down()
            raise
        self.started = time.time()
        self._up = True
        self._monitor = threading.Thread(target=self._watch, name="stack-monitor", daemon=True)
        self._monitor.start()
        state = self.publish_state()
        update_run_meta(self.run_dir, stack=self.spec_summary())
        self.progress(f"stack up in {time.monotonic() - t0:.1f}s: {state.lb_url}")
        return state

    def down(self) -> None:
        """Stop everything in reverse order and remove temp dirs. Idempotent."""
        self._stopping.set()
        for timer in list(self._restart_timers.values()):
            timer.cancel()
        with self.lock:
            if self.nginx:
                self.nginx.stop()
            for name, replica in self.replicas.items():
                if replica.alive():
                    self.lifecycle.stopping(name, str(replica.pid), TEARDOWN)
            with ThreadPoolExecutor(max_workers=max(1, len(self.replicas))) as pool:
                list(pool.map(self._stop_and_record, list(self.replicas.items())))
            for server in (self.proxy, self.redis, self.postgres):
                if server:
                    server.stop()
            if self.spec.state_path and _state_owner(self.spec.state_path) == os.getpid():
                self.spec.state_path.unlink(missing_ok=True)
            if self.tmp and self.tmp.exists():
                shutil.rmtree(self.tmp, ignore_errors=True)
            if self._manifest:
                self._manifest.unlink(missing_ok=True)
            if self._reaper:
                try:
                    self._reaper.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self._reaper.kill()
                    self._reaper.wait(timeout=2)
            self._up = False

    def __enter__(self) -> "LocalStack":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # ------------------------------------------------------------------ start-up steps

    def _prepare_dirs(self) -> None:
        self.run_dir = Path(self.spec.run_dir).resolve() if self.spec.run_dir else new_run_dir(
            self.spec.runs_dir, self.spec.name)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="gauntlet-"))
        # The postgres account must traverse into its own subdirectory.
        os.chmod(self.tmp, 0o711)
        self.lifecycle = ReplicaLifecycle(self.run_dir)

    def _start_reaper(self) -> None:
        self._manifest = self.tmp.parent / f"{self.tmp.name}.manifest"
        write_manifest(self._manifest, {"pgids": [], "load_pgids": [], "paths": [str(self.tmp)],
                                        "run_dir": str(self.run_dir)})
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "harness.reaper", str(os.getpid()), str(self._manifest)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _track(self, proc: ChildProcess | None, key: str = "pgids") -> None:
        """Record a child's process group for the reaper."""
        if proc is None or proc.pid is None or self._manifest is None:
            return
        with self._manifest_lock:  # children start from several threads at once
            manifest = read_manifest(self._manifest)
            groups = manifest.setdefault(key, [])
            if proc.pid not in groups:
                groups.append(proc.pid)
                write_manifest(self._manifest, manifest)

    def track_load(self, proc: ChildProcess) -> None:
        """Give the load generator to the reaper too: if this process dies, the reaper
        stops the load first (its records are written while the stack is still up)."""
        with self.lock:
            self._track(proc, "load_pgids")

    def _start_dependencies(self, deadline: float) -> None:
        logs = self.run_dir / "logs"
        self.postgres = PostgresServer(self.tmp / "postgres", free_port(), logs / "postgres.log")
        self.redis = RedisServer(self.tmp / "redis", free_port(), logs / "redis.log",
                                 persistence=self.spec.redis_persistence)
        self.postgres.on_start = self.redis.on_start = self._track
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(self.postgres.start, deadline), pool.submit(self.redis.start, deadline)]
            errors = [f.exception() for f in futures]
        self._track(self.postgres.proc)
        self._track(self.redis.proc)
        for error in errors:
            if error:
                raise error
        self.progress(f"postgres :{self.postgres.port} and redis :{self.redis.port} ready "
                      f"({time.monotonic() - t0:.1f}s)")

    def _start_proxy(self, deadline: float) -> None:
        self.proxy = FaultProxyServer(free_port(), self.run_dir / "logs" / "faultproxy.log")
        self.proxy.on_start = self._track
        self.proxy.start(deadline)
        self._track(self.proxy.proc)
        self.progress(f"fault proxy API {self.proxy.api_url}")

    def _new_name(self) -> str:
        name = f"r{self._next_index}"
        self._next_index += 1
        return name

    def _dependency_urls(self, name: str) -> dict[str, str]:
        """Each replica reaches each dependency through its own proxy (`redis-r2`)."""
        if self.proxy is None:
            return {"database_url": self.postgres.url, "redis_url": self.redis.url}
        pg = self.proxy.ensure(f"postgres-{name}", f"{LOOPBACK}:{self.postgres.port}")
        rd = self.proxy.ensure(f"redis-{name}", f"{LOOPBACK}:{self.redis.port}")
        return {"database_url": self.postgres.url_via(pg), "redis_url": self.redis.url_via(rd)}

    def _spawn_replica(self, name: str) -> Replica:
        replica = self.replicas.get(name)
        if replica is None:
            values = {
                "broker": self.spec.broker, "secret": self.secret, "publisher_key": self.publisher_key,
                **self._dependency_urls(name),
            }
            app = replace(self.spec.app, env={**self.spec.app.env, **self.spec.replica_env})
            replica = Replica(name, free_port(), app, values, self.run_dir / "logs" / f"{name}.log",
                              grace=self.spec.replica_grace)
            replica.on_start = self._track
            self.replicas[name] = replica
        replica.spawn()
        self._track(replica.proc)
        self.lifecycle.started(name, str(replica.pid), replica.pid)
        return replica

    def _record_exit(self, name: str, replica: Replica) -> None:
        proc = replica.proc
        if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
            self.lifecycle.exited_process(name, proc.pid, proc.popen.returncode, replica.log_path)

    def _stop_and_record(self, item: tuple[str, Replica], policy: KillPolicy | None = None) -> int | None:
        name, replica = item
        code = replica.proc.stop(policy) if replica.proc is not None else None
        self._record_exit(name, replica)
        return code

    def _wait_ready(self, names: list[str], deadline: float) -> None:
        for name in names:
            replica = self.replicas[name]
            what = f"ready at {replica.app.ready_path}" if replica.app.ready_path else replica.health_label
            replica.proc.wait_ready(replica.ready, deadline, what)

    def _upstreams(self) -> list[Upstream]:
        return [Upstream(n, r.port, n in self.drained) for n, r in self.replicas.items()]

    def _start_nginx(self, deadline: float) -> None:
        self.nginx = NginxServer(self.tmp / "nginx", self.spec.lb_port or free_port(), self.run_dir / "logs", self.spec.lb_strategy)
        self.nginx.on_start = self._track
        self.nginx.start(self._upstreams(), deadline)
        self._track(self.nginx.proc)
        self.progress(f"nginx :{self.nginx.port} ({self.spec.lb_strategy}) in front of {len(self.replicas)} replicas")

    # ------------------------------------------------------------------ runtime operations

    def replica(self, name: str) -> Replica:
        try:
            return self.replicas[name]
        except KeyError:
            known = ", ".join(self.replicas) or "none"
            raise KeyError(f"no replica named {name!r} (replicas: {known})") from None

    def signal_replica(self, name: str, signum: int) -> None:
        with self.lock:
            replica = self.replica(name)
            if signum not in NON_ENDING_SIGNALS and replica.alive():
                self.lifecycle.stopping(name, str(replica.pid), SIGNAL, signum)
            replica.proc.signal(signum)

    def stop_replica(self, name: str, policy: KillPolicy | None = None) -> int | None:
        with self.lock:
            replica = self.replica(name)
            if replica.alive():
                self.lifecycle.stopping(name, str(replica.pid), STOP, (policy or replica.proc.kill_policy).signal)
            return self._stop_and_record((name, replica), policy or replica.proc.kill_policy)

    def restart_replica(self, name: str, timeout: float = 30.0, graceful: bool = True) -> None:
        """Stop (gracefully by default) and start again on the same port; wait until ready."""
        with self.lock:
            replica = self.replica(name)
            if replica.alive():
                self.lifecycle.stopping(name, str(replica.pid), RESTART, signal.SIGTERM if graceful else signal.SIGKILL)
                replica.stop(None if graceful else KillPolicy(signal.SIGKILL, 1.0))
            self._record_exit(name, replica)
            self._start_again(name, timeout)

    def revive_replica(self, name: str, timeout: float = 30.0) -> bool:
        """Start a dead replica again on its port; False if it is running or was removed.

        Under the lock, so the restart policy's timer and a heal never both start it.
        """
        with self.lock:
            replica = self.replicas.get(name)
            if replica is None or replica.alive():
                return False
            self._start_again(name, timeout)
            return True

    def _start_again(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        replica = self.replicas[name]
        self._spawn_replica(name)
        replica.wait_healthy(deadline)
        replica.proc.wait_ready(replica.ready, deadline, "ready")
        self.publish_state()
        self.progress(f"{name} restarted (pid {replica.pid})")

    def add_replica(self, timeout: float = 30.0) -> str:
        with self.lock:
            name = self._new_name()
            replica = self._spawn_replica(name)
            deadline = time.monotonic() + timeout
            try:
                replica.wait_healthy(deadline)
                replica.proc.wait_ready(replica.ready, deadline, "ready")
            except StartError:
                self.lifecycle.stopping(name, str(replica.pid), REMOVE)
                self._stop_and_record((name, replica))
                del self.replicas[name]
                raise
            self.nginx.reload(self._upstreams())
            self.publish_state()
            self.progress(f"added {name}; {len(self.replicas)} replicas")
            return name

    def remove_replica(self, name: str) -> None:
        with self.lock:
            replica = self.replica(name)
            if len(self.replicas) == 1:
                raise ValueError("cannot remove the last replica")
            del self.replicas[name]
            self.drained.discard(name)
            self.nginx.reload(self._upstreams())
            if replica.alive():
                self.lifecycle.stopping(name, str(replica.pid), REMOVE)
            self._stop_and_record((name, replica))
            if self.proxy:
                for dep in DEPENDENCIES:
                    self.proxy.remove(f"{dep}-{name}")
            self.publish_state()
            self.progress(f"removed {name}; {len(self.replicas)} replicas")

    def drain(self, name: str) -> None:
        with self.lock:
            self.replica(name)
            self.drained.add(name)
            self.nginx.reload(self._upstreams())
            self.publish_state()

    def undrain(self, name: str) -> None:
        with self.lock:
            self.replica(name)
            self.drained.discard(name)
            self.nginx.reload(self._upstreams())
            self.publish_state()

    def dependency(self, name: str) -> PostgresServer | RedisServer:
        if name == "postgres":
            return self.postgres
        if name == "redis":
            return self.redis
        raise KeyError(f"no dependency named {name!r} (dependencies: {', '.join(DEPENDENCIES)})")

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        """SIGKILL the real server (Postgres, Redis): a crash, not a clean stop. Without
        `keep_data` Redis's data files go too, so it restarts empty; Postgres always keeps
        its acknowledged commits, so asking it to lose them is a ValueError."""
        with self.lock:
            server = self.dependency(name)
            if not keep_data and name != "redis":
                raise ValueError(f"{name} keeps its acknowledged commits across a crash; only redis can lose its data")
            server.proc.stop(KillPolicy(signal.SIGKILL, 2.0))
            if not keep_data:
                server.wipe_data()

    def restart_dependency(self, name: str, timeout: float = 30.0) -> None:
        """Start the server again on the same port with its data."""
        with self.lock:
            server = self.dependency(name)
            if server.alive():
                return
            server.start(time.monotonic() + timeout)
            self._track(server.proc)
            self.publish_state()

    def on_replica_exit(self, listener: Callable[[str, int | None], None]) -> None:
        self._exit_listeners.append(listener)

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        """Notice replicas that died (killed by a fault or crashed) and apply restart policy."""
        known_dead: set[tuple[str, int]] = set()
        while not self._stopping.wait(0.25):
            with self.lock:
                replicas = list(self.replicas.items())
            for name, replica in replicas:
                proc = replica.proc
                if proc is None or proc.alive() or (name, proc.pid) in known_dead:
                    continue
                known_dead.add((name, proc.pid))
                code = proc.returncode()
                self._record_exit(name, replica)
                self.progress(f"{name} exited (code {code})")
                self.publish_state()
                for listener in self._exit_listeners:
                    listener(name, code)
                delay = self.spec.restart_delay
                if delay is not None and not self._stopping.is_set():
                    timer = threading.Timer(delay, self._policy_restart, args=(name, proc.pid))
                    timer.daemon = True
                    self._restart_timers[name] = timer
                    timer.start()

    def _policy_restart(self, name: str, dead_pid: int) -> None:
        with self.lock:
            replica = self.replicas.get(name)
            # Skip if someone already restarted it, or it was removed, or we are stopping.
            if self._stopping.is_set() or replica is None or replica.alive() or replica.proc.pid != dead_pid:
                return
            try:
                self._start_again(name, 30.0)
            except StartError as exc:
                self.progress(f"restart policy: {name} failed to restart: {exc}")

    # ------------------------------------------------------------------ state

    def spec_summary(self) -> dict:
        return {
            "replicas": self.spec.replicas, "broker": self.spec.broker, "lb_strategy": self.spec.lb_strategy,
            "app_command": self.spec.app.command, "reference_app": self.spec.app.is_reference,
            "config": self.spec.config_path, "health": self.spec.app.health,
            "health_path": self.spec.app.health_path, "ready_path": self.spec.app.ready_path,
            "fault_proxies": self.spec.fault_proxies, "restart_delay": self.spec.restart_delay,
            "replica_env": self.spec.replica_env, "redis_persistence": self.spec.redis_persistence,
        }

    def state(self) -> StackState:
        with self.lock:
            comps = []
            for server, url in ((self.postgres, self.postgres and self.postgres.url),
                                (self.redis, self.redis and self.redis.url),
                                (self.nginx, self.nginx and self.nginx.url),
                                (self.proxy, self.proxy and self.proxy.api_url)):
                if server is None:
                    continue
                comps.append(ComponentState(
                    name=server.name, kind=server.name, url=url, port=server.port, pid=server.pid,
                    log=str(server.proc.log_path if server.proc else ""),
                    data_dir=str(getattr(server, "root", "")),
                ))
            reps = []
            for name, r in self.replicas.items():
                status = "drained" if name in self.drained else ("running" if r.alive() else "exited")
                reps.append(ReplicaState(name=name, url=r.url, port=r.port, pid=r.pid,
                                         database_url=r.database_url, redis_url=r.redis_url,
                                         log=str(r.log_path), status=status))
            proxies = [ProxyState(**p) for p in self.proxy.describe()] if self.proxy else []
            lb = self.nginx.url if self.nginx else ""
            return StackState(
                run_dir=str(self.run_dir), harness_pid=os.getpid(), started=self.started,
                broker=self.spec.broker, lb_strategy=self.spec.lb_strategy, lb_url=lb,
                ws_url=lb.replace("http://", "ws://") + "/ws" if lb else "",
                secret=self.secret, publisher_key=self.publisher_key,
                proxy_api_url=self.proxy.api_url if self.proxy else "",
                control_url=self.control_url, control_token=self.control_token,
                spec=self.spec_summary(), components=comps, replicas=reps, proxies=proxies,
            )

    def publish_state(self) -> StackState:
        """Write the state into the run directory and, if asked, the well-known path."""
        state = self.state()
        if self.run_dir:
            write_state(state, self.run_dir / "state.json")
        # Only a complete stack is published: clients must never find a half-started one.
        if self.spec.state_path and self.nginx:
            write_state(state, self.spec.state_path)
        return state


def _state_owner(path: Path) -> int | None:
    try:
        return json.loads(path.read_text()).get("harness_pid")
    except (OSError, ValueError):
        return None
