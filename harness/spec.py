"""What stack to bring up: replicas, broker, load balancing, the app, where runs go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import AppSpec
from harness.servers.nginx import LB_STRATEGIES

# The reference SUT's brokers; a user's own app gets the name in {broker} and decides.
REFERENCE_BROKERS = ("postgres", "redis", "memory", "redis-streams")
# How the stack's Redis keeps its data: an append-only file (a crash keeps it) or nothing
# (a crash restarts it empty, as many deployments run it).
REDIS_PERSISTENCE = ("aof", "none")
MAX_REPLICAS = 32
BACKENDS = ("local", "docker", "swarm")


class SpecError(ValueError):
    """A stack spec that cannot be brought up; the message says which field."""


@dataclass
class DockerOptions:
    """What only the container backends use (harness/docker/)."""

    toxiproxy_image: str | None = None  # None: gauntlet's own fault proxy image
    app_image: str | None = None  # [app.docker] image; None: the reference SUT's image
    app_command: str | None = None  # [app.docker] command template; None: the image's own


@dataclass
class StackSpec:
    replicas: int = 3
    broker: str = "redis"
    lb_strategy: str = "round_robin"
    app: AppSpec = field(default_factory=AppSpec)
    config_path: str = ""  # the project config the app came from; the load, smoke and checks read it too
    name: str = "up"
    runs_dir: Path = Path("runs")
    run_dir: Path | None = None  # reuse an existing run directory (gauntlet run)
    state_path: Path | None = None  # publish the state file here (None: only in the run dir)
    fault_proxies: bool = True  # a fault proxy in front of each replica's dependencies
    startup_timeout: float = 60.0
    replica_grace: float = 10.0  # SIGTERM grace before SIGKILL, for graceful shutdown
    restart_delay: float | None = None  # restart policy: restart a dead replica after this
    replica_env: dict[str, str] = field(default_factory=dict)  # e.g. SUT_DEFECTS
    backend: str = "local"  # local processes, docker containers, or a docker swarm service
    lb_port: int | None = None  # publish the load balancer on this 127.0.0.1 port (None: a free one)
    docker: DockerOptions = field(default_factory=DockerOptions)
    redis_persistence: str = "aof"  # one of REDIS_PERSISTENCE

    def validate(self) -> None:
        if not isinstance(self.replicas, int) or not 1 <= self.replicas <= MAX_REPLICAS:
            raise SpecError(f"replicas must be between 1 and {MAX_REPLICAS}, got {self.replicas!r}")
        if self.app.is_reference and self.broker not in REFERENCE_BROKERS:
            raise SpecError(f"unknown broker {self.broker!r}: choose one of {', '.join(REFERENCE_BROKERS)}")
        if self.lb_strategy not in LB_STRATEGIES:
            raise SpecError(
                f"unknown load-balancing strategy {self.lb_strategy!r}: choose one of {', '.join(LB_STRATEGIES)}"
            )
        if self.redis_persistence not in REDIS_PERSISTENCE:
            raise SpecError(f"unknown Redis persistence {self.redis_persistence!r}: choose one of "
                            f"{', '.join(REDIS_PERSISTENCE)}")
        if self.startup_timeout <= 0:
            raise SpecError("startup timeout must be positive")
        if self.backend not in BACKENDS:
            raise SpecError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.lb_port is not None and not 1 <= self.lb_port <= 65535:
            raise SpecError(f"load-balancer port must be between 1 and 65535, got {self.lb_port!r}")
        if self.backend == "local" and not self.app.command.strip():
            raise SpecError("the app has no [app] command to run as a local process; "
                            "[app.docker] runs with --backend docker or swarm")
