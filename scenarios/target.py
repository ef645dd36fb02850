"""Where the load goes: the running stack's load balancer, or `--host`.

The stack state file (`gauntlet up` writes it) gives the LB URLs and the credentials;
`--host` overrides the URL (the state still supplies credentials when there is one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from common.state import StateError, load_state

from scenarios.config import LoadConfig


class TargetError(ValueError):
    """No usable target; the message says what to start or pass."""


@dataclass(frozen=True)
class Target:
    http_url: str  # base URL for HTTP requests, no trailing slash
    ws_url: str  # WebSocket endpoint of the reference protocol, e.g. ws://127.0.0.1:41001/ws
    secret: str
    publisher_key: str
    replicas: tuple[str, ...] = ()
    source: str = ""
    # The stack's run directory when the load goes to a `gauntlet up` stack: records land
    # beside its logs and fault journal, so `gauntlet report` sees load and faults together.
    stack_run_dir: str = ""


def ws_url_for(http_url: str, path: str = "/ws") -> str:
    parts = urlsplit(http_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def resolve_target(host: str | None, state_path: str, config: LoadConfig) -> Target:
    state = None
    state_error = ""
    try:
        state = load_state(state_path or None)
    except StateError as exc:
        state_error = str(exc)
    secret = (state.secret if state else "") or config.secret or os.environ.get("GAUNTLET_SECRET", "")
    publisher_key = (
        (state.publisher_key if state else "")
        or config.publisher_key
        or os.environ.get("GAUNTLET_PUBLISHER_KEY", "")
    )
    replicas = tuple(r.name for r in state.replicas) if state else ()
    if host:
        http_url = host.rstrip("/")
        if not urlsplit(http_url).scheme.startswith("http"):
            raise TargetError(f"--host {host!r} must be an http:// or https:// URL")
        if state and state.lb_url.rstrip("/") == http_url:
            return Target(http_url, state.ws_url, secret, publisher_key, replicas, source="--host",
                          stack_run_dir=state.run_dir)
        return Target(http_url, ws_url_for(http_url), secret, publisher_key, replicas, source="--host")
    if state is None:
        raise TargetError(f"{state_error}; or give the target with --host http://127.0.0.1:PORT")
    return Target(state.lb_url.rstrip("/"), state.ws_url, secret, publisher_key, replicas,
                  source=f"stack state (broker {state.broker})", stack_run_dir=state.run_dir)
