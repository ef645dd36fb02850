"""The stack state file: how `status`, `chaos`, `smoke` and locustfiles find a running stack.

Written by the harness when a stack is up (mode 0600: it holds the secret and the
publisher key), removed when it goes down. Shape documented in docs/architecture.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

STATE_ENV = "GAUNTLET_STATE"
DEFAULT_STATE_PATH = Path(".gauntlet") / "stack.json"
STATE_VERSION = 1
# The response header the harness's load balancer adds to every response it passes on
# (the WebSocket 101 included), naming the replica that answered: the load records
# where each socket and publish landed from it, for any app (docs/architecture.md).
REPLICA_HEADER = "X-Gauntlet-Replica"


class StateError(Exception):
    """No usable state file: no stack is up, or the file is not ours."""


@dataclass
class ComponentState:
    name: str
    kind: str
    url: str
    port: int
    pid: int | None
    log: str = ""
    data_dir: str = ""


@dataclass
class ReplicaState:
    name: str
    url: str
    port: int
    pid: int | None
    database_url: str
    redis_url: str
    log: str = ""
    status: str = "running"  # running | exited | stopped | drained


@dataclass
class ProxyState:
    name: str
    listen: str
    upstream: str
    enabled: bool = True


@dataclass
class StackState:
    run_dir: str
    harness_pid: int
    started: float
    broker: str
    lb_strategy: str
    lb_url: str
    ws_url: str
    secret: str
    publisher_key: str
    proxy_api_url: str = ""
    control_url: str = ""  # the harness's own API (restart, scale, drain) for `gauntlet chaos`
    control_token: str = ""
    spec: dict = field(default_factory=dict)
    components: list[ComponentState] = field(default_factory=list)
    replicas: list[ReplicaState] = field(default_factory=list)
    proxies: list[ProxyState] = field(default_factory=list)
    version: int = STATE_VERSION

    def component(self, name: str) -> ComponentState:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def replica(self, name: str) -> ReplicaState:
        for rep in self.replicas:
            if rep.name == name:
                return rep
        raise KeyError(name)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> "StackState":
        if raw.get("version") != STATE_VERSION:
            raise StateError(f"state file version {raw.get('version')!r} is not {STATE_VERSION}")
        raw = dict(raw)
        raw["components"] = [ComponentState(**c) for c in raw.get("components", [])]
        raw["replicas"] = [ReplicaState(**r) for r in raw.get("replicas", [])]
        raw["proxies"] = [ProxyState(**p) for p in raw.get("proxies", [])]
        return cls(**raw)


SECRET_FIELDS = ("secret", "publisher_key", "control_token")
HIDDEN = "(hidden; --show-secrets)"


def redact_url(url: str) -> str:
    """The URL without the password in its user part (`redis://:***@127.0.0.1:41004/0`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def redacted(doc: dict) -> dict:
    """A state document with every secret hidden: tokens, keys, and the passwords in URLs."""
    out = json.loads(json.dumps(doc))
    for key in SECRET_FIELDS:
        if out.get(key):
            out[key] = HIDDEN
    for comp in out.get("components", []):
        comp["url"] = redact_url(comp.get("url", ""))
    for rep in out.get("replicas", []):
        for key in ("database_url", "redis_url"):
            rep[key] = redact_url(rep.get(key, ""))
    return out


def state_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else DEFAULT_STATE_PATH


def write_state(state: StackState, path: Path) -> None:
    """Atomic write, owner-only from the first byte (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state.to_json(), fh, indent=2)
    os.replace(tmp, path)


def load_state(path: str | os.PathLike | None = None) -> StackState:
    """Read the state of the running stack, or raise StateError saying what to do."""
    p = state_path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise StateError(
            f"no running stack: {p} does not exist (start one with `gauntlet up`, "
            f"or point --state / ${STATE_ENV} at its state file)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StateError(f"cannot read stack state {p}: {exc}") from None
    try:
        return StackState.from_json(raw)
    except (TypeError, KeyError) as exc:
        raise StateError(f"stack state {p} is malformed: {exc}") from None
