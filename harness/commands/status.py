"""`gauntlet status`: what is running, where, and whether it is healthy."""

from __future__ import annotations

import argparse
import json

from common.liveness import pid_alive
from harness.servers.replica import accepts_tcp, http_status
from common.state import load_state, redact_url, redacted


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="show the running stack's components, URLs and pids",
                       description="Show every component of the running stack with its state, URL and pid. "
                                   "--json prints the state file (lb_url, replicas, proxies, ...) with its "
                                   "secrets hidden; --show-secrets includes them.")
    p.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show-secrets", action="store_true",
                   help="include the secret, the publisher key, the control token and the Postgres/Redis "
                        "passwords (they are in the owner-only state file too)")
    p.set_defaults(run=run)


def _probe(url: str, port: int, spec: dict) -> str:
    """The app's own readiness: its ready path, else its health check (any 2xx, or TCP)."""
    path = spec.get("ready_path", "/api/ready")
    if not path and spec.get("health") == "tcp":
        return "accepting" if accepts_tcp("127.0.0.1", port) else "unreachable"
    path = path or spec.get("health_path") or "/"
    try:
        code = http_status(url + path, 1.0)
    except OSError:
        return "unreachable"
    return "ready" if 200 <= code < 300 else f"unready ({code})"


def run(args: argparse.Namespace) -> int:
    state = load_state(args.state)
    harness_up = pid_alive(state.harness_pid)
    if args.json:
        doc = state.to_json() if args.show_secrets else redacted(state.to_json())
        doc["harness_alive"] = harness_up
        print(json.dumps(doc, indent=2))
        return 0 if harness_up else 1
    rows = [("component", "state", "url", "pid")]
    for comp in state.components:
        alive = bool(comp.pid) and pid_alive(comp.pid)
        rows.append((comp.name, "running" if alive else "down",
                     comp.url if args.show_secrets else redact_url(comp.url), str(comp.pid or "-")))
    for rep in state.replicas:
        alive = bool(rep.pid) and pid_alive(rep.pid)
        health = _probe(rep.url, rep.port, state.spec) if alive else "down"
        if rep.status == "drained":
            health += ", drained"
        rows.append((rep.name, health, rep.url, str(rep.pid or "-")))
    for proxy in state.proxies:
        rows.append((f"proxy {proxy.name}", "enabled" if proxy.enabled else "DISABLED",
                     f"{proxy.listen} → {proxy.upstream}", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nload balancer {state.lb_url}   websocket {state.ws_url}")
    if state.proxy_api_url:
        print(f"fault proxy API {state.proxy_api_url}")
    print(f"run dir {state.run_dir}")
    if not harness_up:
        print(f"warning: the harness (pid {state.harness_pid}) is not running; this state is stale "
              f"(`gauntlet down` removes it)")
        return 1
    return 0
