"""What stack to bring up: replicas, broker, load balancing, the app, where runs go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import AppSpec
from harness.servers.nginx import LB_STRATEGIES

# The reference SUT's brokers; a user's own app gets the name in {broker} and decides.
REFERENCE_BROKERS = ("postgres", "redis", "memory", "redis-streams")
MAX_REPLICAS = 32


class SpecError(ValueError):
    """A stack spec that cannot be brought up; the message says which field."""


@dataclass
class StackSpec:
    replicas: int = 3
    broker: str = "redis"
    lb_strategy: str = "round_robin"
    app: AppSpec = field(default_factory=AppSpec)
    name: str = "up"
    runs_dir: Path = Path("runs")
    run_dir: Path | None = None  # reuse an existing run directory (gauntlet run)
    state_path: Path | None = None  # publish the state file here (None: only in the run dir)
    fault_proxies: bool = True  # a fault proxy in front of each replica's dependencies
    startup_timeout: float = 60.0
    replica_grace: float = 10.0  # SIGTERM grace before SIGKILL, for graceful shutdown
    restart_delay: float | None = None  # restart policy: restart a dead replica after this
    replica_env: dict[str, str] = field(default_factory=dict)  # e.g. SUT_DEFECTS

    def validate(self) -> None:
        if not isinstance(self.replicas, int) or not 1 <= self.replicas <= MAX_REPLICAS:
            raise SpecError(f"replicas must be between 1 and {MAX_REPLICAS}, got {self.replicas!r}")
        if self.app.is_reference and self.broker not in REFERENCE_BROKERS:
            raise SpecError(f"unknown broker {self.broker!r}: choose one of {', '.join(REFERENCE_BROKERS)}")
        if self.lb_strategy not in LB_STRATEGIES:
            raise SpecError(
                f"unknown load-balancing strategy {self.lb_strategy!r}: choose one of {', '.join(LB_STRATEGIES)}"
            )
        if self.startup_timeout <= 0:
            raise SpecError("startup timeout must be positive")
