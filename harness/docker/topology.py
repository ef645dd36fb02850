"""The stack on Docker, described once: compose.yaml, the Docker and the Swarm backend all
come from here, so they cannot drift apart.

```
 127.0.0.1:<lb> ─► nginx ─► r1..rN (port 8000 on the run's network)
                              ├─► toxiproxy:1543<i> (postgres-r<i>) ─► postgres:5432
                              └─► toxiproxy:1637<i> (redis-r<i>)    ─► redis:6379
```

Every service lives on one network the run creates; containers find each other by
name on it. The host reaches a service only through a port published on 127.0.0.1.
Each replica has its own pair of proxies in the Toxiproxy-compatible fault proxy (the
service is called `toxiproxy` because that is the API it speaks), so a dependency fault
can hit one replica or all, exactly as in the embedded stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config import AppSpec, ConfigError, REFERENCE_ENV, _fill

RUN_LABEL = "gauntlet.run"  # every container, network, volume and service of a run carries it
ROLE_LABEL = "gauntlet.role"  # postgres | redis | toxiproxy | replica | nginx
NAME_LABEL = "gauntlet.name"  # r1, postgres, ...
APP_PORT = 8000
PROXY_API_PORT = 8474
POSTGRES_PORT = 5432
REDIS_PORT = 6379
LB_PORT = 80
DEPENDENCIES = ("postgres", "redis")
# Listen ports of the per-replica proxies inside the proxy container: "1", the replica's
# number, then 1 for Postgres or 2 for Redis (postgres-r3 on 131, redis-r12 on 1122).
# Written by concatenation, so a Swarm service can give each task its own with the
# template {{.Task.Slot}}; unique for replicas 1..999 (the proxy container may bind low
# ports: net.ipv4.ip_unprivileged_port_start=0 in its network namespace).
PROXY_PORT_SUFFIX = {"postgres": "1", "redis": "2"}
MAX_SLOT = 999
SLOT = "{{.Task.Slot}}"  # Swarm's template for a task's slot number
PROXY_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0"}
DEPENDENCY_PORT = {"postgres": POSTGRES_PORT, "redis": REDIS_PORT}
DB_URL = "postgresql://gauntlet@{host}/gauntlet"
REDIS_URL = "redis://{host}/0"
# The reference SUT reads every setting from its environment (sut/config.py).
REFERENCE_DOCKER_ENV = {
    "SUT_HOST": "0.0.0.0", "SUT_PORT": "{port}", "SUT_INSTANCE": "{instance}", "SUT_BROKER": "{broker}",
    "DATABASE_URL": "{database_url}", "REDIS_URL": "{redis_url}", **REFERENCE_ENV,
}


@dataclass(frozen=True)
class Images:
    """Which image runs each role; a user's own app and the real Toxiproxy replace two of them."""

    postgres: str = "gauntlet/postgres:latest"
    redis: str = "gauntlet/redis:latest"
    toxiproxy: str = "gauntlet/faultproxy:latest"
    replica: str = "gauntlet/sut:latest"
    nginx: str = "gauntlet/nginx:latest"

    def all(self) -> dict[str, str]:
        return {"postgres": self.postgres, "redis": self.redis, "toxiproxy": self.toxiproxy,
                "replica": self.replica, "nginx": self.nginx}


@dataclass(frozen=True)
class Service:
    """One container of the stack, as both compose.yaml and the SDK need it."""

    name: str
    role: str
    image: str
    port: int  # the container port published on 127.0.0.1
    command: tuple[str, ...] | None = None  # None: the image's own entrypoint and arguments
    environment: dict[str, str] = field(default_factory=dict)
    volume: str | None = None  # mount point of the service's data volume
    stop_grace: float = 10.0
    sysctls: dict[str, str] = field(default_factory=dict)
    # Services that must be started first. The fault proxy resolves its upstreams' names
    # when it loads its routes and refuses a name the network does not know yet (the
    # name exists once that container is started), so it starts after postgres and redis.
    depends_on: tuple[str, ...] = ()

    def labels(self, run: str) -> dict[str, str]:
        return {RUN_LABEL: run, ROLE_LABEL: self.role, NAME_LABEL: self.name}


@dataclass(frozen=True)
class ProxyRoute:
    name: str  # postgres-r2
    listen: str  # 0.0.0.0:15432, inside the proxy container
    upstream: str  # postgres:5432

    def to_json(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": True}


@dataclass(frozen=True)
class DockerApp:
    """The app under test on Docker: the reference SUT's image, or `[app.docker]`."""

    image: str | None = None  # None: gauntlet/sut
    command: str | None = None  # a template like [app] command; None: the image's own
    env: dict[str, str] = field(default_factory=dict)
    health_path: str = "/api/health"
    ready_path: str | None = "/api/ready"
    is_reference: bool = True
    health: str = "http"  # or "tcp": an app without a health route (see harness/config.py)

    @classmethod
    def from_app(cls, app: AppSpec, image: str | None = None, command: str | None = None) -> "DockerApp":
        if app.is_reference:
            return cls(image=image, command=command, env=dict(REFERENCE_DOCKER_ENV))
        return cls(image=image, command=command, env=dict(app.env), health_path=app.health_path,
                   ready_path=app.ready_path, is_reference=False, health=app.health)


def replica_index(name: str) -> int:
    return int(name.lstrip("r"))


def proxy_port_text(dependency: str, index: int | str) -> str:
    """The port as text: `index` may be a number or the Swarm slot template."""
    return f"1{index}{PROXY_PORT_SUFFIX[dependency]}"


def proxy_port(dependency: str, index: int) -> int:
    if not 1 <= index <= MAX_SLOT:
        raise ValueError(f"replica number {index} is outside 1..{MAX_SLOT}")
    return int(proxy_port_text(dependency, index))


def proxy_routes(names: list[str] | tuple[str, ...]) -> list[ProxyRoute]:
    return [ProxyRoute(f"{dep}-{name}", f"0.0.0.0:{proxy_port(dep, replica_index(name))}",
                       f"{dep}:{DEPENDENCY_PORT[dep]}") for dep in DEPENDENCIES for name in names]


def dependency_urls(name: str, fault_proxies: bool) -> dict[str, str]:
    """Replica `name` (r3, or `r{{.Task.Slot}}` for a Swarm service) reaches each
    dependency through its own proxy."""
    if not fault_proxies:
        return {"database_url": DB_URL.format(host=f"postgres:{POSTGRES_PORT}"),
                "redis_url": REDIS_URL.format(host=f"redis:{REDIS_PORT}")}
    i = name[1:] if name == f"r{SLOT}" else replica_index(name)
    return {"database_url": DB_URL.format(host=f"toxiproxy:{proxy_port_text('postgres', i)}"),
            "redis_url": REDIS_URL.format(host=f"toxiproxy:{proxy_port_text('redis', i)}")}


def dependency_services(images: Images) -> list[Service]:
    return [
        Service("postgres", "postgres", images.postgres, POSTGRES_PORT, volume="/var/lib/postgresql/data"),
        Service("redis", "redis", images.redis, REDIS_PORT, volume="/data", stop_grace=3.0),
    ]


def proxy_service(images: Images) -> Service:
    # Toxiproxy's flags; gauntlet's proxy takes the same ones.
    return Service("toxiproxy", "toxiproxy", images.toxiproxy, PROXY_API_PORT, command=("-host=0.0.0.0",),
                   stop_grace=3.0, sysctls=dict(PROXY_SYSCTLS), depends_on=DEPENDENCIES)


def nginx_service(images: Images, replicas: tuple[str, ...] = ()) -> Service:
    # nginx resolves its upstreams' names once, at start: the replicas go first.
    return Service("nginx", "nginx", images.nginx, LB_PORT, stop_grace=3.0, depends_on=replicas)


def replica_service(name: str, app: DockerApp, images: Images, *, broker: str, secret: str, publisher_key: str,
                    fault_proxies: bool = True, extra_env: dict[str, str] | None = None,
                    grace: float = 10.0) -> Service:
    """Replica `name`; its settings filled in from the same placeholders as the embedded stack."""
    values = {"port": str(APP_PORT), "instance": name, "host": "0.0.0.0", "broker": broker, "secret": secret,
              "publisher_key": publisher_key, "python": "python", **dependency_urls(name, fault_proxies)}
    env = {k: _fill(v, values, f"app.env.{k}") for k, v in app.env.items()}
    env.update(extra_env or {})
    command = None
    if app.command:
        import shlex

        command = tuple(shlex.split(_fill(app.command, values, "app.docker.command")))
    depends = (*DEPENDENCIES, "toxiproxy") if fault_proxies else DEPENDENCIES
    return Service(name, "replica", app.image or images.replica, APP_PORT, command=command, environment=env,
                   stop_grace=grace, depends_on=depends)


@dataclass(frozen=True)
class Upstream:
    name: str
    address: str  # host:port as nginx reaches it on the run's network
    drained: bool = False


def replica_map(upstreams: list[Upstream]) -> str:
    """The answering upstream's replica name, as the embedded stack's nginx has it
    (harness/servers/nginx.py `replica_map`). Only upstreams given by address can be
    named: `$upstream_addr` shows addresses, so compose.yaml's by-name upstreams leave
    the header out and attribution falls back to what the app says (its welcome frame)."""
    lines = []
    for u in upstreams:
        if not u.address[:1].isdigit():
            continue
        addr = u.address.replace(".", r"\.")
        lines.append(f'    "~(^|\\s){addr}\\|(.*\\s)?[1-9][0-9]*$" {u.name};\n')
    return ("  map \"$upstream_addr|$upstream_bytes_received\" $gauntlet_replica {\n"
            '    default "";\n' + "".join(lines) + "  }\n")


def render_nginx(upstreams: list[Upstream], strategy: str = "round_robin") -> str:
    """The load balancer's config: the same upstream, WebSocket, body-size and replica-header
    handling as the embedded stack (harness/servers/nginx.py; a test compares the two),
    listening on port 80 of its container."""
    from harness.servers.nginx import MAX_BODY, TOO_LARGE_BODY
    from common.state import REPLICA_HEADER

    method = "" if strategy == "round_robin" else f"    {strategy};\n"
    servers = "".join(
        f"    server {u.address} max_fails=1 fail_timeout=2s{' down' if u.drained else ''}; # {u.name}\n"
        for u in upstreams) or "    server 127.0.0.1:1 down;\n"
    return f"""# Written by gauntlet (harness/docker/topology.py).
worker_processes 2;
pid /run/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 20000;
worker_shutdown_timeout 30s;
events {{ worker_connections 9000; }}
http {{
  access_log off;
  client_max_body_size {MAX_BODY};
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
{replica_map(upstreams)}  upstream replicas {{
{method}{servers}    keepalive 64;
  }}
  server {{
    listen {LB_PORT} backlog=4096;
    error_page 413 @too_large;
    location @too_large {{
      default_type application/json;
      return 413 '{TOO_LARGE_BODY}';
    }}
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 2s;
      proxy_read_timeout 3600s;
      proxy_send_timeout 60s;
      # A refused connection (dead replica) is retried on the next one; a POST that
      # already reached a replica is never sent twice.
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 3;
      add_header X-Upstream $upstream_addr always;
      # The app cannot name a replica in our header; only the map below does.
      proxy_hide_header {REPLICA_HEADER};
      add_header {REPLICA_HEADER} $gauntlet_replica always;
    }}
  }}
}}
"""


def check_app_command(app: DockerApp) -> None:
    """Placeholders of `[app.docker] command` and `[app] env` are known (ConfigError otherwise)."""
    probe = {"port": "1", "instance": "r1", "host": "h", "broker": "b", "secret": "s", "publisher_key": "k",
             "python": "python", "database_url": "d", "redis_url": "r"}
    if app.command:
        _fill(app.command, probe, "app.docker.command")
    for key, value in app.env.items():
        _fill(value, probe, f"app.env.{key}")


__all__ = ["APP_PORT", "ConfigError", "DockerApp", "Images", "ProxyRoute", "Service", "Upstream",
           "dependency_services", "nginx_service", "proxy_routes", "proxy_service", "render_nginx",
           "replica_service"]
