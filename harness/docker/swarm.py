"""SwarmStack: the replicas as one Docker Swarm service, for stacks that outgrow one machine.

```
 127.0.0.1:<lb> ─► nginx (plain container) ─► tasks of service gauntlet-<run>-replicas
 127.0.0.1:<p_i> ─► nginx :9000+i ─────────► task in slot i (each replica, for smoke and health)
                                               ├─► toxiproxy:1<i>1 ─► postgres
                                               └─► toxiproxy:1<i>2 ─► redis
```

- The replicas are one service (`replicas: N`) on an attachable overlay network with
  `endpoint_mode: dnsrr` (the service VIP does not route on every host; dnsrr gives the
  tasks' own addresses). Each task learns its name and its own proxies from the
  template `{{.Task.Slot}}`: slot 3 is replica r3, reaching Postgres through proxy
  port 131, as the topology (harness/docker/topology.py) writes it for every backend.
- Postgres, Redis, the fault proxy and nginx are plain containers attached to that
  network. Only nginx publishes, on 127.0.0.1: the load balancer, and one port per
  slot that leads to that slot's task, so the harness reaches each replica without the
  routing mesh (whose published ports listen on every interface).
- nginx lists the tasks by address and is rewritten and reloaded when the task set
  changes (a task killed and replaced by Swarm, a scale), as the monitor notices.
- Scale-out and scale-in are service updates; kill and pause act on a single task's
  container; a restart of one replica stops its task's container and waits for Swarm
  to replace it; `rolling_restart()` is a forced service update under the service's
  update policy (one task at a time, stop-first).
- If the daemon is not in a swarm, the stack initialises a single-node one
  (`--advertise-addr 127.0.0.1`, manager listening on 127.0.0.1) and leaves it at
  teardown; a swarm it did not create is never left or changed beyond its own
  labelled service, containers and network.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from harness.docker import topology as topo
from harness.docker.daemon import DockerUnavailable, connect
from harness.docker.stack import Container, DockerStack, http_status, wait_until
from harness.ports import LOOPBACK, free_port
from harness.process import StartError
from common.state import StackState

def _quiet(_: str) -> None:
    pass


SLOT_PORT_BASE = 9000  # nginx listens on 9000+i for slot i
MAX_PUBLISHED_SLOTS = 64


class SwarmReplica:
    """Slot `i` of the replica service: whatever task currently holds it."""

    def __init__(self, stack: "SwarmStack", slot: int) -> None:
        self.stack = stack
        self.slot = slot
        self.name = f"r{slot}"
        self.port = stack.slot_ports[slot]
        self.app = stack.app

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def task(self) -> dict | None:
        return self.stack.current_tasks().get(self.slot)

    def _container(self):
        task = self.task()
        cid = ((task or {}).get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")
        if not cid:
            return None
        from docker.errors import NotFound

        try:
            return self.stack.client.containers.get(cid)
        except NotFound:
            return None

    @property
    def container(self):
        return self._container()

    def status(self) -> str:
        container = self._container()
        return container.status if container is not None else "exited"

    def alive(self) -> bool:
        return self.status() in ("running", "paused")

    @property
    def pid(self) -> int | None:
        container = self._container()
        if container is None or container.status not in ("running", "paused"):
            return None
        return container.attrs["State"].get("Pid") or None

    @property
    def database_url(self) -> str:
        return topo.dependency_urls(self.name, self.stack.spec.fault_proxies)["database_url"]

    @property
    def redis_url(self) -> str:
        return topo.dependency_urls(self.name, self.stack.spec.fault_proxies)["redis_url"]

    @property
    def log_path(self) -> Path:
        return self.stack.run_dir / "logs" / f"{self.name}.log"

    def ready(self) -> bool:
        return http_status(self.url + (self.app.ready_path or self.app.health_path)) == 200

    def wait_ready(self, deadline: float) -> None:
        wait_until(lambda: self.stack.task_address(self.slot) is not None, deadline, f"{self.name}: a running task")
        self.stack.sync_nginx()
        wait_until(self.ready, deadline, f"{self.name} ready")

    def save_log(self) -> None:
        """The log of the slot's current task (the service's whole log goes to logs/replicas.log)."""
        container = self._container()
        if container is None or self.stack.run_dir is None:
            return
        try:
            self.log_path.write_bytes(container.logs(stdout=True, stderr=True))
        except Exception:  # gone meanwhile
            pass


class SwarmStack(DockerStack):
    backend = "swarm"

    def __init__(self, spec, progress=_quiet) -> None:
        super().__init__(spec, progress)
        self.created_swarm = False
        self.service = None
        self.slot_ports: dict[int, int] = {}
        self._nginx_view: dict[int, str] = {}
        self._tasks_cache: tuple[float, dict[int, dict]] = (0.0, {})

    @property
    def service_name(self) -> str:
        return f"gauntlet-{self.run}-replicas"

    # ------------------------------------------------------------------ start-up

    def _create_network(self) -> None:
        self._join_swarm()
        self.client.networks.create(self.network_name, driver="overlay", attachable=True,
                                    labels={topo.RUN_LABEL: self.run}, scope="swarm")

    def _join_swarm(self) -> None:
        info = self.client.info().get("Swarm", {})
        if info.get("LocalNodeState") == "active":
            if not info.get("ControlAvailable"):
                raise DockerUnavailable("this Docker daemon is a swarm worker: point DOCKER_HOST at a manager")
            return
        self.client.swarm.init(advertise_addr=LOOPBACK, listen_addr=f"{LOOPBACK}:2377")
        self.created_swarm = True
        self._manifest_add(swarm_leave=True)
        self.progress("initialised a single-node swarm on 127.0.0.1 (left again at teardown)")

    def _manifest_add(self, **fields) -> None:
        from harness.reaper import read_manifest, write_manifest

        if self._manifest is None:
            return
        manifest = read_manifest(self._manifest)
        manifest["docker"][0].update(fields)
        write_manifest(self._manifest, manifest)

    def _address(self, number: int) -> str | None:
        return None  # overlay: Docker assigns; services find each other by name

    def up(self) -> StackState:
        t0 = time.monotonic()
        deadline = t0 + self.spec.startup_timeout
        try:
            self.client = connect(self.base_url)
            from harness.rundir import new_run_dir

            self.run_dir = Path(self.spec.run_dir).resolve() if self.spec.run_dir else new_run_dir(
                self.spec.runs_dir, self.spec.name)
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            self._start_reaper()
            self._create_network()
            self._start_dependencies(deadline)
            slots = list(range(1, self.spec.replicas + 1))
            if self.proxy is not None:
                self.proxy.ensure(topo.proxy_routes([f"r{s}" for s in range(1, self._slot_capacity() + 1)]))
            self._start_nginx_container(deadline)
            self._create_service(len(slots))
            for slot in slots:
                self.replicas[f"r{slot}"] = SwarmReplica(self, slot)
            for replica in self.replicas.values():
                replica.wait_ready(deadline)
            self._next_index = len(slots) + 1
            self.progress(f"service {self.service_name}: {len(slots)} tasks ready")
        except BaseException:
            self.down()
            raise
        self.started = time.time()
        self._monitor = threading.Thread(target=self._watch, name="swarm-monitor", daemon=True)
        self._monitor.start()
        state = self.publish_state()
        from harness.rundir import update_run_meta

        update_run_meta(self.run_dir, stack=self.spec_summary())
        self.progress(f"swarm stack up in {time.monotonic() - t0:.1f}s: {state.lb_url} (run {self.run})")
        return state

    def _slot_capacity(self) -> int:
        """Slots that get a published port and proxies up front (nginx's ports are fixed at creation)."""
        return min(topo.MAX_SLOT, max(self.spec.replicas + 8, 2 * self.spec.replicas), MAX_PUBLISHED_SLOTS)

    def _start_nginx_container(self, deadline: float) -> None:
        capacity = self._slot_capacity()
        self.slot_ports = {s: free_port() for s in range(1, capacity + 1)}
        service = topo.nginx_service(self.images)
        port = self.spec.lb_port or free_port()
        self.nginx = Container(self, service, None, port,
                               extra_ports={SLOT_PORT_BASE + s: p for s, p in self.slot_ports.items()})
        self.nginx.create()
        self.components["nginx"] = self.nginx
        self._write_nginx_config()
        self.nginx.start()
        self.nginx.wait_ready(deadline)

    def _create_service(self, replicas: int) -> None:
        from docker.types import EndpointSpec, RestartPolicy, ServiceMode, UpdateConfig

        svc = topo.replica_service(
            f"r{topo.SLOT}", self.app, self.images, broker=self.spec.broker, secret=self.secret,
            publisher_key=self.publisher_key, fault_proxies=self.spec.fault_proxies,
            extra_env=self.spec.replica_env, grace=self.spec.replica_grace)
        labels = {topo.RUN_LABEL: self.run, topo.ROLE_LABEL: "replica"}
        self.service = self.client.services.create(
            svc.image, args=list(svc.command) if svc.command else None, name=self.service_name,
            env=[f"{k}={v}" for k, v in svc.environment.items()], labels=labels, container_labels=labels,
            hostname=f"r{topo.SLOT}", mode=ServiceMode("replicated", replicas=replicas),
            networks=[self.network_name], endpoint_spec=EndpointSpec(mode="dnsrr"),
            restart_policy=RestartPolicy(condition="any", delay=int(1e9), max_attempts=0),
            update_config=UpdateConfig(parallelism=1, delay=int(2e9), order="stop-first", failure_action="pause"),
            stop_grace_period=int(self.spec.replica_grace * 1e9), init=True)

    # ------------------------------------------------------------------ tasks and nginx

    def current_tasks(self, max_age: float = 0.2) -> dict[int, dict]:
        """slot -> the task that should be running there (newest first), cached briefly."""
        at, cached = self._tasks_cache
        if time.monotonic() - at < max_age or self.service is None:
            return cached
        from docker.errors import APIError

        try:
            tasks = self.client.api.tasks(filters={"service": self.service_name, "desired-state": "running"})
        except APIError:  # the service or the swarm is gone (teardown)
            return {}
        by_slot: dict[int, dict] = {}
        for task in sorted(tasks, key=lambda t: t.get("CreatedAt", "")):
            by_slot[task.get("Slot", 0)] = task
        self._tasks_cache = (time.monotonic(), by_slot)
        return by_slot

    def task_address(self, slot: int) -> str | None:
        task = self.current_tasks(max_age=0.0).get(slot)
        if task is None or task.get("Status", {}).get("State") != "running":
            return None
        for attachment in task.get("NetworksAttachments", []):
            if attachment.get("Network", {}).get("Spec", {}).get("Name") == self.network_name:
                return attachment["Addresses"][0].split("/")[0]
        return None

    def _upstreams(self) -> list[topo.Upstream]:
        return [topo.Upstream(f"r{s}", f"{addr}:{topo.APP_PORT}", f"r{s}" in self.drained)
                for s, addr in sorted(self._nginx_view.items())]

    def _write_nginx_config(self) -> None:
        import io
        import tarfile

        text = topo.render_nginx(self._upstreams(), self.spec.lb_strategy)
        # One server per slot: 127.0.0.1:<p_i> on the host leads to the task in slot i.
        slots = "".join(
            f"  server {{ listen {SLOT_PORT_BASE + s}; location / {{ proxy_pass http://{addr}:{topo.APP_PORT}; "
            f"proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
            f"proxy_set_header Connection $connection_upgrade; proxy_read_timeout 3600s; }} }}\n"
            for s, addr in sorted(self._nginx_view.items()))
        text = text.rstrip()[:-1] + slots + "}\n"  # inside the http block
        data = text.encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("nginx.conf")
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.nginx.container.put_archive("/etc/nginx", buffer.getvalue())

    def sync_nginx(self) -> bool:
        """Point nginx at the tasks running now; True if it was reloaded."""
        with self.lock:
            view = {}
            for slot in self.current_tasks(max_age=0.0):
                if f"r{slot}" in self.replicas:
                    addr = self.task_address(slot)
                    if addr:
                        view[slot] = addr
            if view == self._nginx_view:
                return False
            self._nginx_view = view
            self._reload_nginx()
            return True

    # ------------------------------------------------------------------ runtime operations

    def signal_replica(self, name: str, signum: int) -> None:
        """A single task: `docker kill --signal` of its container; STOP/CONT freeze and thaw it."""
        replica = self.replica(name)
        container = replica.container
        if container is None:
            return
        if signum == signal.SIGSTOP:
            if container.status == "running":
                container.pause()
        elif signum == signal.SIGCONT:
            if container.status == "paused":
                container.unpause()
        elif container.status in ("running", "paused"):
            if container.status == "paused":
                container.unpause()
            container.kill(signal.Signals(signum).name)

    def restart_replica(self, name: str, timeout: float = 30.0, graceful: bool = True) -> None:
        """Stop the slot's task; Swarm starts a new one in its place (its restart policy)."""
        with self.lock:
            replica = self.replica(name)
            old = (replica.task() or {}).get("ID")
            container = replica.container
            if container is not None:
                if container.status == "paused":
                    container.unpause()
                if graceful:
                    container.stop(timeout=max(1, round(self.spec.replica_grace)))
                else:
                    container.kill()
            deadline = time.monotonic() + timeout
            wait_until(lambda: (replica.task() or {}).get("ID") not in (None, old)
                       and self.task_address(replica.slot) is not None, deadline, f"{name}: a new task")
            replica.wait_ready(deadline)
            self.publish_state()

    def revive_replica(self, name: str, timeout: float = 30.0) -> bool:
        """Swarm restarts a dead task by itself; wait (bounded) until the slot runs again."""
        replica = self.replicas.get(name)
        if replica is None or replica.alive():
            return False
        replica.wait_ready(time.monotonic() + timeout)
        self.publish_state()
        return True

    def _scale(self, replicas: int, timeout: float) -> None:
        self.service.reload()
        self.service.scale(replicas)
        deadline = time.monotonic() + timeout
        def settled() -> bool:
            tasks = self.current_tasks(max_age=0.0)
            return len(tasks) == replicas and all(self.task_address(s) for s in tasks)

        wait_until(settled, deadline, f"the service at {replicas} running tasks")

    def add_replica(self, timeout: float = 30.0) -> str:
        """Scale out by one: Swarm fills the lowest free slot."""
        with self.lock:
            used = {r.slot for r in self.replicas.values()}
            slot = min(s for s in range(1, len(used) + 2) if s not in used)
            if slot > len(self.slot_ports):
                raise StartError(f"scale-out: this swarm stack has room for {len(self.slot_ports)} replicas")
            self._scale(len(used) + 1, timeout)
            replica = SwarmReplica(self, slot)
            self.replicas[replica.name] = replica
            replica.wait_ready(time.monotonic() + timeout)
            self.publish_state()
            self.progress(f"scaled to {len(self.replicas)} tasks (added {replica.name})")
            return replica.name

    def remove_replica(self, name: str) -> None:
        """Scale in by one (a service update). Swarm chooses which task goes, not the
        harness: the replica names follow the slots that remain, and the progress line
        says which one went when it was not `name`."""
        with self.lock:
            self.replica(name)
            if len(self.replicas) == 1:
                raise ValueError("cannot remove the last replica")
            self._scale(len(self.replicas) - 1, 60.0)
            # The task list can show a slot being restarted or shut down for a moment after
            # the count settles: wait until what remains is slots this stack knows.
            known = {r.slot for r in self.replicas.values()}
            target = len(self.replicas) - 1

            def only_known_slots() -> bool:
                slots = set(self.current_tasks(max_age=0.0))
                return len(slots) == target and slots <= known

            wait_until(only_known_slots, time.monotonic() + 30.0, f"the service's {target} remaining tasks in known slots")
            left = set(self.current_tasks(max_age=0.0))
            gone = [n for n, r in self.replicas.items() if r.slot not in left]
            self.replicas = {n: r for n, r in self.replicas.items() if r.slot in left}
            self.drained -= set(gone)
            self.sync_nginx()
            self.publish_state()
            note = "" if gone == [name] else f" (asked for {name}; Swarm chose {', '.join(gone)})"
            self.progress(f"scaled to {len(self.replicas)} tasks, removed {', '.join(gone)}{note}")

    def rolling_restart(self, timeout: float = 180.0) -> None:
        """Every task replaced in turn by Swarm's update policy (parallelism 1, stop-first)."""
        with self.lock:
            before = {s: t["ID"] for s, t in self.current_tasks(max_age=0.0).items()}
            self.service.reload()
            self.service.force_update()
            deadline = time.monotonic() + timeout

            def replaced() -> bool:
                now = self.current_tasks(max_age=0.0)
                return all(now.get(s, {}).get("ID") not in (None, old) and self.task_address(s)
                           for s, old in before.items())

            wait_until(replaced, deadline, "the rolling update")
            for replica in self.replicas.values():
                replica.wait_ready(deadline)
            self.publish_state()

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        """Follow the tasks: nginx always lists the running ones; report tasks that died."""
        seen: dict[int, str] = {}
        while not self._stopping.wait(0.5):
            try:
                tasks = self.current_tasks(max_age=0.0)
                for slot, task in tasks.items():
                    if seen.get(slot) not in (None, task["ID"]):
                        self.progress(f"r{slot}: task replaced by Swarm")
                        for listener in self._exit_listeners:
                            listener(f"r{slot}", None)
                    seen[slot] = task["ID"]
                if self.sync_nginx():
                    self.publish_state()
            except Exception:  # the daemon is busy; look again next round
                continue

    # ------------------------------------------------------------------ teardown

    def down(self) -> None:
        if self.service is not None and self.run_dir is not None:
            try:  # every task's output, the killed ones' too, before the service goes
                logs = self.client.api.service_logs(self.service_name, stdout=True, stderr=True, timestamps=True)
                (self.run_dir / "logs" / "replicas.log").write_bytes(b"".join(logs))
            except Exception:  # nothing to keep
                pass
        super().down()
        if self.created_swarm and self.client is not None:
            try:
                self.client.swarm.leave(force=True)
            except Exception as exc:  # report; the reaper's manifest is gone already
                self.progress(f"could not leave the swarm this stack created: {exc}")
            self.created_swarm = False

    def spec_summary(self) -> dict:
        return {**super().spec_summary(), "service": self.service_name}


def preflight(spec) -> None:
    if spec.replicas > MAX_PUBLISHED_SLOTS:
        raise DockerUnavailable(f"--backend swarm publishes one port per replica: at most {MAX_PUBLISHED_SLOTS}")
