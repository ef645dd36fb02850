"""`gauntlet smoke`: a quick cross-instance delivery check against the running stack."""

from __future__ import annotations

import argparse

from harness.smoke import run_smoke
from harness.state import load_state
from harness.units import parse_duration


def add_parser(sub) -> None:
    p = sub.add_parser(
        "smoke", help="check that notifications reach subscribers on every replica",
        description="Connect WebSocket subscribers directly to every replica, publish notifications through "
                    "the load balancer, and print delivered / lost / duplicated per (publisher instance → "
                    "subscriber instance). Exits 1 on any loss: with --broker memory on several replicas it "
                    "shows the cross-instance loss.")
    p.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")
    p.add_argument("--messages", type=int, metavar="M",
                   help="notifications to publish (default 10 per publisher/subscriber pair)")
    p.add_argument("--per-replica", type=int, default=2, metavar="K", help="subscribers per replica (default 2)")
    p.add_argument("--timeout", default="5s", metavar="DURATION", help="wait for deliveries (default 5s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    state = load_state(args.state)
    live = [r for r in state.replicas if r.status != "exited"]
    messages = args.messages if args.messages is not None else 10 * max(1, len(live)) ** 2
    if args.per_replica < 1:
        raise ValueError("--per-replica must be at least 1")
    print(f"smoke: {args.per_replica} subscribers on each of {len(live)} replicas, {messages} notifications "
          f"through {state.lb_url} ...", flush=True)
    result = run_smoke(state, messages=messages, per_replica=args.per_replica, timeout=parse_duration(args.timeout))
    print(result.table())
    for failure in result.publish_failures[:5]:
        print(f"  publish failed: {failure}")
    return 0 if result.ok else 1
