"""DockerStack: the same stack as LocalStack, as containers of a Docker daemon (docker SDK).

```
 127.0.0.1:<lb> ─► nginx ─► r1..rN ─► toxiproxy (per-replica proxies) ─► postgres, redis
```

One network per run, with the subnet Docker picks pinned so that every container keeps
its address across a kill and a restart (nginx's upstream holds addresses, as it
would hold them for hosts). Every container, the network and the data volumes carry
the run's label; `down()` removes whatever carries it, and so does the reaper when
the harness dies without `down()`. Every published port binds to 127.0.0.1 on the
host; the harness talks to containers only through those.

Replica faults go through the Docker API: a signal is `docker kill --signal`, SIGSTOP
and SIGCONT freeze and thaw the whole container (`docker pause`/`unpause`, the cgroup
freezer), a restart is stop + start of the same container, scaling creates and
removes containers. Dependency faults go through the proxy's Toxiproxy API, and a
`crash` kills the Postgres or Redis container (its volume keeps the data).

It offers what `chaos.target.LocalHandle` and the control API use of a LocalStack, so
faults, `gauntlet chaos` and the pytest plugin drive either one.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.docker import topology as topo
from harness.docker.cleanup import remove_run
from harness.docker.daemon import DockerUnavailable, connect, docker_host
from harness.lifecycle import NON_ENDING_SIGNALS, ReplicaLifecycle
from harness.ports import LOOPBACK, free_port
from harness.process import StartError
from harness.reaper import read_manifest, write_manifest
from harness.rundir import new_run_dir, update_run_meta
from harness.servers.replica import holds_tcp
from harness.spec import StackSpec
from common.state import ComponentState, ProxyState, ReplicaState, StackState, write_state
from common.replica_events import LOG_TAIL_LINES, REMOVE, RESTART, SIGNAL, STOP, TEARDOWN

Progress = Callable[[str], None]
# Fixed host numbers in the run's subnet (.1 is the gateway); replica r<i> is REPLICA_BASE + i.
ADDRESS = {"postgres": 2, "redis": 3, "toxiproxy": 4, "nginx": 5}
REPLICA_BASE = 10
COMPONENT_NAME = {"toxiproxy": "faultproxy"}  # the state file's name for the proxy, as embedded


def _quiet(_: str) -> None:
    pass


def http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _answers(port: int, probe: bytes, expect: bytes, timeout: float = 1.0) -> bool:
    """A protocol answer on a published port: Docker's port proxy accepts before the server does."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(probe)
            return sock.recv(16).startswith(expect)
    except OSError:
        return False


POSTGRES_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
READINESS = {
    "postgres": lambda port: _answers(port, POSTGRES_SSL_REQUEST, b"N"),
    "redis": lambda port: _answers(port, b"PING\r\n", b"+PONG"),
    "toxiproxy": lambda port: http_status(f"http://{LOOPBACK}:{port}/version") == 200,
    "nginx": lambda port: http_status(f"http://{LOOPBACK}:{port}/", 0.5) != 0,
}


def wait_until(check: Callable[[], bool], deadline: float, what: str, container=None) -> None:
    while not check():
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                tail = container.logs(tail=15).decode(errors="replace").strip()
                raise StartError(f"{what}: the container exited (code {container.attrs['State']['ExitCode']})"
                                 + (f":\n{tail}" if tail else ""))
        if time.monotonic() > deadline:
            raise StartError(f"{what}: not ready before the deadline")
        time.sleep(0.1)


class Container:
    """One container of the run: its service, host port and address on the run's network."""

    def __init__(self, stack: "DockerStack", service: topo.Service, address: str | None, host_port: int,
                 extra_ports: dict[int, int] | None = None) -> None:
        self.stack = stack
        self.service = service
        self.name = service.name
        self.address = address  # None: Docker picks it (an overlay network)
        self.port = host_port
        self.extra_ports = extra_ports or {}  # more container ports published on 127.0.0.1
        self.container = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def container_name(self) -> str:
        return f"gauntlet-{self.stack.run}-{self.name}"

    def create(self) -> None:
        api = self.stack.client.api
        svc = self.service
        binds = {}
        if svc.volume:
            binds[self.stack.volume_name(self.name)] = {"bind": svc.volume, "mode": "rw"}
        bindings = {svc.port: (LOOPBACK, self.port), **{p: (LOOPBACK, h) for p, h in self.extra_ports.items()}}
        host_config = api.create_host_config(
            port_bindings=bindings, binds=binds or None, sysctls=svc.sysctls or None,
            ulimits=[{"Name": "nofile", "Soft": 20000, "Hard": 20000}], init=svc.role == "replica")
        networking = api.create_networking_config({self.stack.network_name: api.create_endpoint_config(
            ipv4_address=self.address, aliases=[self.name])})
        created = api.create_container(
            svc.image, command=list(svc.command) if svc.command else None, name=self.container_name,
            hostname=self.name, labels=svc.labels(self.stack.run), environment=svc.environment,
            ports=list(bindings), host_config=host_config, networking_config=networking,
            stop_timeout=max(1, round(svc.stop_grace)))
        self.container = self.stack.client.containers.get(created["Id"])

    def start(self) -> None:
        self.container.start()

    def reload(self) -> dict:
        from docker.errors import NotFound

        try:
            self.container.reload()
        except NotFound:
            return {}
        return self.container.attrs.get("State", {})

    def status(self) -> str:
        """running | paused | exited | created | removed."""
        return self.reload().get("Status", "removed")

    def alive(self) -> bool:
        return self.status() in ("running", "paused", "restarting")

    @property
    def pid(self) -> int | None:
        """The container's main process on the daemon's host (an identity: a restart changes it)."""
        state = self.reload()
        return state.get("Pid") or None if state.get("Status") in ("running", "paused") else None

    def exit_code(self) -> int | None:
        state = self.reload()
        return state.get("ExitCode") if state.get("Status") == "exited" else None

    def started_at(self) -> str:
        return self.reload().get("StartedAt", "")

    def save_log(self) -> None:
        if self.container is None or self.stack.run_dir is None:
            return
        try:
            data = self.container.logs(stdout=True, stderr=True)
        except Exception:  # gone already; nothing to keep
            return
        (self.stack.run_dir / "logs" / f"{self.name}.log").write_bytes(data)

    def wait_ready(self, deadline: float) -> None:
        check = READINESS[self.service.role]
        wait_until(lambda: check(self.port), deadline, f"{self.name} ({self.service.image})", self.container)


class Replica(Container):
    """A replica container; health and readiness through its port published on 127.0.0.1.

    The replica's address belongs to a second, idle container (`holder`) whose network
    namespace the app's container joins, as a Kubernetes pod's pause container holds the
    pod's. A killed replica then refuses connections at once, as a dead process does in
    the embedded stack: had the address gone with the app's container, nginx's connects
    to it would go unanswered until proxy_connect_timeout (2 s) on each try, and the
    latency targets would judge Docker's networking instead of the app."""

    def __init__(self, stack: "DockerStack", service: topo.Service, address: str, host_port: int) -> None:
        super().__init__(stack, service, address, host_port)
        self.app = stack.app
        self.holder = None

    @property
    def holder_name(self) -> str:
        return f"{self.container_name}-net"

    def create(self) -> None:
        api = self.stack.client.api
        svc = self.service
        labels = {topo.RUN_LABEL: self.stack.run, topo.ROLE_LABEL: "replica-net", topo.NAME_LABEL: f"{self.name}-net"}
        holder_config = api.create_host_config(port_bindings={svc.port: (LOOPBACK, self.port)}, init=True)
        networking = api.create_networking_config({self.stack.network_name: api.create_endpoint_config(
            ipv4_address=self.address, aliases=[self.name])})
        # Any image of the stack with coreutils will do; nginx's is always there.
        held = api.create_container(
            self.stack.images.nginx, entrypoint=["sleep", "infinity"], command=[], name=self.holder_name,
            hostname=self.name, labels=labels, ports=[svc.port], host_config=holder_config,
            networking_config=networking, stop_timeout=1)
        self.holder = self.stack.client.containers.get(held["Id"])
        self.holder.start()
        host_config = api.create_host_config(
            network_mode=f"container:{held['Id']}",
            ulimits=[{"Name": "nofile", "Soft": 20000, "Hard": 20000}], init=True)
        created = api.create_container(
            svc.image, command=list(svc.command) if svc.command else None, name=self.container_name,
            labels=svc.labels(self.stack.run), environment=svc.environment, host_config=host_config,
            stop_timeout=max(1, round(svc.stop_grace)))
        self.container = self.stack.client.containers.get(created["Id"])

    def remove(self) -> None:
        for box in (self.container, self.holder):
            if box is not None:
                try:
                    box.remove(force=True)
                except Exception:  # gone already
                    pass

    @property
    def database_url(self) -> str:
        return topo.dependency_urls(self.name, self.stack.spec.fault_proxies)["database_url"]

    @property
    def redis_url(self) -> str:
        return topo.dependency_urls(self.name, self.stack.spec.fault_proxies)["redis_url"]

    @property
    def log_path(self) -> Path:
        return self.stack.run_dir / "logs" / f"{self.name}.log"

    def start(self) -> None:
        """Start the container; its start time names this incarnation in replicas.jsonl."""
        self.container.start()
        self.stack.lifecycle.started(self.name, self.started_at(), self.pid)

    def stopping(self, reason: str, signum: int | None = None) -> None:
        if self.alive():
            self.stack.lifecycle.stopping(self.name, self.started_at(), reason, signum)

    def record_exit(self, state: dict | None = None) -> None:
        """The container's exit code (and whether the kernel's OOM killer ended it), with its log tail."""
        state = state if state is not None else self.reload()
        if state.get("Status") != "exited":
            return
        try:
            tail = self.container.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES).decode("utf-8", "replace")
        except Exception:  # gone already: the exit still counts, without its words
            tail = ""
        self.stack.lifecycle.exited(self.name, state.get("StartedAt", ""), state.get("ExitCode"), None,
                                    tail.splitlines()[-LOG_TAIL_LINES:],
                                    "killed by the kernel's OOM killer" if state.get("OOMKilled") else "")

    def healthy(self) -> bool:
        """Any 2xx from the health path, or (health = "tcp") a connection the app holds open."""
        if self.app.health == "tcp":
            return holds_tcp(LOOPBACK, self.port)
        return 200 <= http_status(self.url + self.app.health_path, 0.5) < 300

    def ready(self) -> bool:
        if not self.app.ready_path:
            return self.healthy()
        return 200 <= http_status(self.url + self.app.ready_path) < 300

    def wait_ready(self, deadline: float) -> None:
        what = "accepting TCP" if self.app.health == "tcp" else f"healthy at {self.app.health_path}"
        wait_until(self.healthy, deadline, f"{self.name} {what}", self.container)
        wait_until(self.ready, deadline, f"{self.name} ready", self.container)


class DockerStack:
    backend = "docker"

    def __init__(self, spec: StackSpec, progress: Progress = _quiet) -> None:
        spec.validate()
        self.spec = spec
        self.progress = progress
        self.lock = threading.RLock()
        self.secret = secrets.token_hex(16)
        self.publisher_key = secrets.token_hex(16)
        self.control_token = secrets.token_hex(16)
        self.run = secrets.token_hex(4)
        self.app = topo.DockerApp.from_app(spec.app, spec.docker.app_image, spec.docker.app_command)
        self.images = docker_images(spec)
        self.client = None
        self.base_url = docker_host()
        self.run_dir: Path | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self.components: dict[str, Container] = {}
        self.replicas: dict[str, Replica] = {}
        self.drained: set[str] = set()
        self.proxy: _ProxyAPI | None = None
        self.nginx: Container | None = None
        self.started = 0.0
        self.control_url = ""
        self._next_index = 1
        self._reaper: subprocess.Popen | None = None
        self._manifest: Path | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._restart_timers: dict[str, threading.Timer] = {}
        self._exit_listeners: list[Callable[[str, int | None], None]] = []
        self.lifecycle = ReplicaLifecycle(None)

    @property
    def network_name(self) -> str:
        return f"gauntlet-{self.run}"

    def volume_name(self, service: str) -> str:
        return f"gauntlet-{self.run}-{service}"

    # ------------------------------------------------------------------ lifecycle

    def up(self) -> StackState:
        t0 = time.monotonic()
        deadline = t0 + self.spec.startup_timeout
        try:
            self.client = connect(self.base_url)
            self.run_dir = Path(self.spec.run_dir).resolve() if self.spec.run_dir else new_run_dir(
                self.spec.runs_dir, self.spec.name)
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            self.lifecycle = ReplicaLifecycle(self.run_dir)
            self._start_reaper()
            self._create_network()
            self._start_dependencies(deadline)
            names = [self._new_name() for _ in range(self.spec.replicas)]
            if self.proxy is not None:
                self.proxy.ensure(topo.proxy_routes(names))
            for name in names:
                self._create_replica(name).start()
            for name in names:
                self.replicas[name].wait_ready(deadline)
            self.progress(f"replicas {', '.join(names)} ready")
            self._start_nginx(deadline)
        except BaseException:
            self.down()
            raise
        self.started = time.time()
        self._monitor = threading.Thread(target=self._watch, name="docker-monitor", daemon=True)
        self._monitor.start()
        state = self.publish_state()
        update_run_meta(self.run_dir, stack=self.spec_summary())
        self.progress(f"stack up in {time.monotonic() - t0:.1f}s: {state.lb_url} (docker run {self.run})")
        return state

    def down(self) -> None:
        """Keep every container's log, then remove everything with the run's label. Idempotent."""
        self._stopping.set()
        for timer in list(self._restart_timers.values()):
            timer.cancel()
        with self.lock:
            if self.client is not None and self.lifecycle.path is not None:  # swarm tasks: not recorded
                for box in self.replicas.values():
                    try:
                        box.record_exit()  # one that died by itself before the monitor looked
                        box.stopping(TEARDOWN)
                    except Exception:  # the daemon is gone: teardown goes on
                        pass
            if self.client is not None:
                everything = [*self.replicas.values(), *self.components.values()]
                if everything:
                    with ThreadPoolExecutor(max_workers=min(8, len(everything))) as pool:
                        list(pool.map(lambda c: c.save_log(), everything))
                problems = remove_run(self.client, self.run)
                if problems:
                    self.progress("teardown left: " + "; ".join(problems))
            if self.spec.state_path and _state_owner(self.spec.state_path) == os.getpid():
                self.spec.state_path.unlink(missing_ok=True)
            if self._manifest:
                self._manifest.unlink(missing_ok=True)
            if self._reaper:
                try:
                    self._reaper.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    self._reaper.kill()
                    self._reaper.wait(timeout=2)
                self._reaper = None

    def __enter__(self) -> "DockerStack":
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    # ------------------------------------------------------------------ start-up steps

    def _start_reaper(self) -> None:
        import tempfile

        fd, name = tempfile.mkstemp(prefix=f"gauntlet-docker-{self.run}-", suffix=".manifest")
        os.close(fd)
        self._manifest = Path(name)
        write_manifest(self._manifest, {"pgids": [], "load_pgids": [], "paths": [],
                                        "docker": [{"host": self.base_url, "run": self.run}],
                                        "run_dir": str(self.run_dir) if self.run_dir else ""})
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "harness.reaper", str(os.getpid()), str(self._manifest)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def track_load(self, proc) -> None:
        """The reaper stops the load generator first if this process dies (harness/reaper.py)."""
        if self._manifest is None or proc.pid is None:
            return
        manifest = read_manifest(self._manifest)
        manifest.setdefault("load_pgids", []).append(proc.pid)
        write_manifest(self._manifest, manifest)

    def _create_network(self) -> None:
        """A bridge network whose subnet Docker chooses, then pinned so addresses can be fixed."""
        labels = {topo.RUN_LABEL: self.run}
        probe = self.client.networks.create(self.network_name, driver="bridge", labels=labels)
        subnet = probe.attrs["IPAM"]["Config"][0]["Subnet"]
        probe.remove()
        from docker.types import IPAMConfig, IPAMPool

        self.subnet = ipaddress.ip_network(subnet)
        gateway = str(self.subnet[1])
        self.client.networks.create(self.network_name, driver="bridge", labels=labels, internal=False,
                                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)]))

    def _address(self, number: int) -> str:
        return str(self.subnet[number])

    def _component(self, service: topo.Service) -> Container:
        if service.volume:
            self.client.volumes.create(self.volume_name(service.name), labels={topo.RUN_LABEL: self.run})
        port = self.spec.lb_port if service.role == "nginx" and self.spec.lb_port else free_port()
        box = Container(self, service, self._address(ADDRESS[service.role]), port)
        box.create()
        self.components[service.name] = box
        return box

    def _start_dependencies(self, deadline: float) -> None:
        t0 = time.monotonic()
        services = topo.dependency_services(self.images)
        if self.spec.fault_proxies:
            services.append(topo.proxy_service(self.images))
        boxes = [self._component(s) for s in services]
        for box in boxes:
            box.start()
        for box in boxes:
            box.wait_ready(deadline)
        if self.spec.fault_proxies:
            self.proxy = _ProxyAPI(self.components["toxiproxy"].url)
        self.progress(f"{', '.join(b.name for b in boxes)} ready ({time.monotonic() - t0:.1f}s)")

    def _new_name(self) -> str:
        name = f"r{self._next_index}"
        self._next_index += 1
        return name

    def _create_replica(self, name: str) -> Replica:
        service = topo.replica_service(
            name, self.app, self.images, broker=self.spec.broker, secret=self.secret,
            publisher_key=self.publisher_key, fault_proxies=self.spec.fault_proxies,
            extra_env=self.spec.replica_env, grace=self.spec.replica_grace)
        replica = Replica(self, service, self._address(REPLICA_BASE + topo.replica_index(name)), free_port())
        replica.create()
        self.replicas[name] = replica
        return replica

    def _upstreams(self) -> list[topo.Upstream]:
        return [topo.Upstream(n, f"{r.address}:{topo.APP_PORT}", n in self.drained) for n, r in self.replicas.items()]

    def _start_nginx(self, deadline: float) -> None:
        self.nginx = self._component(topo.nginx_service(self.images))
        self._write_nginx_config()
        self.nginx.start()
        self.nginx.wait_ready(deadline)
        self.progress(f"nginx 127.0.0.1:{self.nginx.port} ({self.spec.lb_strategy}) in front of "
                      f"{len(self.replicas)} replicas")

    def _write_nginx_config(self) -> None:
        text = topo.render_nginx(self._upstreams(), self.spec.lb_strategy).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("nginx.conf")
            info.size, info.mode, info.mtime = len(text), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(text))
        self.nginx.container.put_archive("/etc/nginx", buffer.getvalue())

    def _reload_nginx(self, timeout: float = 10.0) -> None:
        """New config, validated, then SIGHUP; returns when new workers serve it."""
        self._write_nginx_config()
        check = self.nginx.container.exec_run(["nginx", "-t", "-q"])
        if check.exit_code != 0:
            raise StartError(f"nginx rejected the new config: {check.output.decode(errors='replace').strip()}")
        before = self._nginx_workers()
        self.nginx.container.kill("SIGHUP")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self._nginx_workers()
            new = [pid for pid in workers if pid not in before]
            old_accepting = [pid for pid, title in workers.items() if pid in before and "shutting down" not in title]
            if new and not old_accepting:
                return
            time.sleep(0.05)
        raise StartError("nginx did not switch to the new config after reload")

    def _nginx_workers(self) -> dict[str, str]:
        top = self.nginx.container.top(ps_args="-eo pid,args")
        titles = top.get("Processes") or []
        return {row[0]: row[-1] for row in titles if "worker process" in row[-1]}

    # ------------------------------------------------------------------ runtime operations

    def replica(self, name: str) -> Replica:
        try:
            return self.replicas[name]
        except KeyError:
            known = ", ".join(self.replicas) or "none"
            raise KeyError(f"no replica named {name!r} (replicas: {known})") from None

    def signal_replica(self, name: str, signum: int) -> None:
        """`docker kill --signal`; STOP and CONT freeze and thaw the whole container."""
        from docker.errors import APIError

        with self.lock:
            box = self.replica(name)
            status = box.status()
            try:
                if signum == signal.SIGSTOP:
                    if status == "running":
                        box.container.pause()
                elif signum == signal.SIGCONT:
                    if status == "paused":
                        box.container.unpause()
                elif status in ("running", "paused"):
                    if signum not in NON_ENDING_SIGNALS:
                        box.stopping(SIGNAL, signum)
                    if status == "paused":
                        box.container.unpause()  # a frozen process takes no signal until thawed
                    box.container.kill(signal.Signals(signum).name)
            except APIError as exc:
                if box.alive():
                    raise StartError(f"{name}: {exc.explanation}") from None

    def stop_replica(self, name: str, policy=None) -> int | None:
        with self.lock:
            box = self.replica(name)
            box.stopping(STOP, signal.SIGTERM)
            box.container.stop(timeout=max(1, round(self.spec.replica_grace)))
            box.record_exit()
            return box.exit_code()

    def restart_replica(self, name: str, timeout: float = 30.0, graceful: bool = True) -> None:
        with self.lock:
            box = self.replica(name)
            if box.alive():
                box.stopping(RESTART, signal.SIGTERM if graceful else signal.SIGKILL)
                if box.status() == "paused":
                    box.container.unpause()
                if graceful:
                    box.container.stop(timeout=max(1, round(self.spec.replica_grace)))
                else:
                    box.container.kill()
                    box.container.wait(timeout=10)
            box.record_exit()
            self._start_again(name, timeout)

    def revive_replica(self, name: str, timeout: float = 30.0) -> bool:
        with self.lock:
            box = self.replicas.get(name)
            if box is None or box.alive():
                return False
            self._start_again(name, timeout)
            return True

    def _start_again(self, name: str, timeout: float) -> None:
        box = self.replicas[name]
        box.start()
        box.wait_ready(time.monotonic() + timeout)
        self.publish_state()
        self.progress(f"{name} restarted (pid {box.pid})")

    def add_replica(self, timeout: float = 30.0) -> str:
        with self.lock:
            name = self._new_name()
            if self.proxy is not None:
                self.proxy.ensure(topo.proxy_routes([name]))
            box = self._create_replica(name)
            try:
                box.start()
                box.wait_ready(time.monotonic() + timeout)
            except StartError:
                box.save_log()
                box.remove()
                del self.replicas[name]
                raise
            self._reload_nginx()
            self.publish_state()
            self.progress(f"added {name}; {len(self.replicas)} replicas")
            return name

    def remove_replica(self, name: str) -> None:
        with self.lock:
            box = self.replica(name)
            if len(self.replicas) == 1:
                raise ValueError("cannot remove the last replica")
            del self.replicas[name]
            self.drained.discard(name)
            self._reload_nginx()
            box.stopping(REMOVE, signal.SIGTERM)
            if box.status() == "paused":
                box.container.unpause()
            box.container.stop(timeout=max(1, round(self.spec.replica_grace)))
            box.record_exit()
            box.save_log()
            box.remove()
            if self.proxy is not None:
                for dep in topo.DEPENDENCIES:
                    self.proxy.remove(f"{dep}-{name}")
            self.publish_state()
            self.progress(f"removed {name}; {len(self.replicas)} replicas")

    def drain(self, name: str) -> None:
        with self.lock:
            self.replica(name)
            self.drained.add(name)
            self._reload_nginx()
            self.publish_state()

    def undrain(self, name: str) -> None:
        with self.lock:
            self.replica(name)
            self.drained.discard(name)
            self._reload_nginx()
            self.publish_state()

    def dependency(self, name: str) -> Container:
        if name not in topo.DEPENDENCIES:
            raise KeyError(f"no dependency named {name!r} (dependencies: {', '.join(topo.DEPENDENCIES)})")
        return self.components[name]

    def crash_dependency(self, name: str, keep_data: bool = True) -> None:
        """SIGKILL the server's container: a crash; its volume keeps the data."""
        if not keep_data:
            raise ValueError("the docker backend cannot restart a dependency without its data yet")
        with self.lock:
            box = self.dependency(name)
            if box.alive():
                box.container.kill()
                box.container.wait(timeout=10)

    def restart_dependency(self, name: str, timeout: float = 30.0) -> None:
        with self.lock:
            box = self.dependency(name)
            if box.alive():
                return
            box.container.start()
            box.wait_ready(time.monotonic() + timeout)
            self.publish_state()

    def on_replica_exit(self, listener: Callable[[str, int | None], None]) -> None:
        self._exit_listeners.append(listener)

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        """Notice replicas that exited (by a fault or by themselves); apply the restart policy."""
        known: set[tuple[str, str]] = set()
        while not self._stopping.wait(0.5):
            with self.lock:
                replicas = list(self.replicas.items())
            for name, box in replicas:
                try:
                    state = box.reload()
                except Exception:  # the daemon is busy or gone; look again next round
                    continue
                if state.get("Status") != "exited" or (name, state.get("StartedAt", "")) in known:
                    continue
                known.add((name, state.get("StartedAt", "")))
                code = state.get("ExitCode")
                box.record_exit(state)
                self.progress(f"{name} exited (code {code})")
                self.publish_state()
                for listener in self._exit_listeners:
                    listener(name, code)
                delay = self.spec.restart_delay
                if delay is not None and not self._stopping.is_set():
                    timer = threading.Timer(delay, self._policy_restart, args=(name, state.get("StartedAt", "")))
                    timer.daemon = True
                    self._restart_timers[name] = timer
                    timer.start()

    def _policy_restart(self, name: str, dead_start: str) -> None:
        with self.lock:
            box = self.replicas.get(name)
            if self._stopping.is_set() or box is None or box.alive() or box.started_at() != dead_start:
                return
            try:
                self._start_again(name, 30.0)
            except StartError as exc:
                self.progress(f"restart policy: {name} failed to restart: {exc}")

    # ------------------------------------------------------------------ state

    def spec_summary(self) -> dict:
        return {
            "replicas": self.spec.replicas, "broker": self.spec.broker, "lb_strategy": self.spec.lb_strategy,
            "app_command": self.app.command, "reference_app": self.spec.app.is_reference,
            "config": self.spec.config_path, "health": self.app.health,
            "health_path": self.app.health_path, "ready_path": self.app.ready_path,
            "fault_proxies": self.spec.fault_proxies, "restart_delay": self.spec.restart_delay,
            "replica_env": self.spec.replica_env, "backend": self.backend, "docker_host": self.base_url,
            "docker_run": self.run, "images": self.images.all(),
        }

    def state(self) -> StackState:
        with self.lock:
            comps = []
            for name, box in self.components.items():
                url = (f"postgresql://gauntlet@{LOOPBACK}:{box.port}/gauntlet" if name == "postgres" else
                       f"redis://{LOOPBACK}:{box.port}/0" if name == "redis" else box.url)
                comps.append(ComponentState(name=COMPONENT_NAME.get(name, name), kind=COMPONENT_NAME.get(name, name),
                                            url=url, port=box.port, pid=box.pid, log=f"logs/{name}.log",
                                            data_dir=self.volume_name(name) if box.service.volume else ""))
            reps = []
            for name, r in self.replicas.items():
                status = r.status()
                shown = "drained" if name in self.drained else (
                    status if status in ("running", "paused") else "exited")
                reps.append(ReplicaState(name=name, url=r.url, port=r.port, pid=r.pid, database_url=r.database_url,
                                         redis_url=r.redis_url, log=str(r.log_path), status=shown))
            proxies = [ProxyState(**p) for p in self.proxy.describe()] if self.proxy else []
            lb = self.nginx.url if self.nginx else ""
            return StackState(
                run_dir=str(self.run_dir), harness_pid=os.getpid(), started=self.started, broker=self.spec.broker,
                lb_strategy=self.spec.lb_strategy, lb_url=lb, ws_url=lb.replace("http://", "ws://") + "/ws" if lb else "",
                secret=self.secret, publisher_key=self.publisher_key,
                proxy_api_url=self.proxy.url if self.proxy else "", control_url=self.control_url,
                control_token=self.control_token, spec=self.spec_summary(), components=comps, replicas=reps,
                proxies=proxies,
            )

    def publish_state(self) -> StackState:
        state = self.state()
        if self.run_dir:
            write_state(state, self.run_dir / "state.json")
        if self.spec.state_path and self.nginx:
            write_state(state, self.spec.state_path)
        return state

    @property
    def lb_url(self) -> str:
        return self.nginx.url if self.nginx else ""


class _ProxyAPI:
    """The proxy container's Toxiproxy API, through its port published on 127.0.0.1."""

    def __init__(self, url: str) -> None:
        from chaos.toxiproxy_client import ToxiproxyClient

        self.url = self.api_url = url
        self.client = ToxiproxyClient(url)

    def ensure(self, routes: list[topo.ProxyRoute]) -> None:
        from chaos.toxiproxy_client import ToxiproxyError

        for route in routes:
            try:
                self.client.create_proxy(route.name, route.upstream, listen=route.listen)
            except ToxiproxyError as exc:
                if exc.status != 409:
                    raise StartError(f"fault proxy: cannot create {route.name}: {exc.message}") from None

    def remove(self, name: str) -> None:
        from chaos.toxiproxy_client import ToxiproxyError

        try:
            self.client.delete_proxy(name)
        except ToxiproxyError:
            pass

    def describe(self) -> list[dict]:
        try:
            proxies = self.client.proxies()
        except Exception:  # the proxy is down: nothing to show
            return []
        return [{"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": p.enabled}
                for p in sorted(proxies.values(), key=lambda p: p.name)]


def docker_images(spec: StackSpec) -> topo.Images:
    images = topo.Images()
    overrides = {}
    if spec.docker.toxiproxy_image:
        overrides["toxiproxy"] = spec.docker.toxiproxy_image
    from dataclasses import replace

    return replace(images, **overrides)


def preflight(spec: StackSpec) -> None:
    """Before anything starts: a daemon answers, every image exists, the LB port is free."""
    from docker.errors import ImageNotFound

    client = connect()
    try:
        images = docker_images(spec)
        wanted = {**images.all()}
        app = topo.DockerApp.from_app(spec.app, spec.docker.app_image, spec.docker.app_command)
        topo.check_app_command(app)
        if app.image:
            wanted["replica"] = app.image
        if not spec.fault_proxies:
            wanted.pop("toxiproxy")
        for role, image in wanted.items():
            try:
                client.images.get(image)
            except ImageNotFound:
                hint = ("build gauntlet's images with `make docker-images`" if image.startswith("gauntlet/")
                        else f"build or pull it into the daemon at {docker_host()}")
                raise DockerUnavailable(f"image {image} ({role}) is not in the Docker daemon: {hint}") from None
    finally:
        client.close()


def _state_owner(path: Path) -> int | None:
    try:
        return json.loads(path.read_text()).get("harness_pid")
    except (OSError, ValueError):
        return None
