"""`gauntlet smoke`: a quick cross-instance delivery check against the running stack, or
(with --backend) against a stack of its own that it brings up and tears down."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.smoke import run_smoke
from harness.spec import BACKENDS, DockerOptions, StackSpec
from common.state import load_state
from common.units import parse_duration
from scenarios.adapters import AdapterError, ConnectFailed
from scenarios.config import LoadConfig, LoadConfigError, load_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "smoke", help="check that notifications reach subscribers on every replica",
        description="Connect WebSocket subscribers directly to every replica, publish notifications to "
                    "each replica in turn, and print delivered / lost / duplicated per (publisher instance → "
                    "subscriber instance). Clients speak the app's protocol, from the [load] table of the "
                    "config the stack was brought up with (or --config). Exits 1 on any loss: with "
                    "--broker memory on several replicas it shows the cross-instance loss.")
    p.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")
    p.add_argument("--messages", type=int, metavar="M",
                   help="notifications to publish (default 10 per publisher/subscriber pair)")
    p.add_argument("--per-replica", type=int, default=2, metavar="K", help="subscribers per replica (default 2)")
    p.add_argument("--timeout", default="5s", metavar="DURATION", help="wait for deliveries (default 5s)")
    own = p.add_argument_group("a stack of its own (instead of the running one)")
    own.add_argument("--backend", choices=BACKENDS,
                     help="bring up a fresh stack on this backend, smoke it, tear it down")
    own.add_argument("--replicas", type=int, default=3, metavar="N", help="with --backend: replicas (default 3)")
    own.add_argument("--broker", default="redis", metavar="NAME", help="with --backend: broker (default redis)")
    own.add_argument("--runs-dir", default="runs", metavar="DIR", help="with --backend: run directories (default ./runs)")
    p.add_argument("--config", metavar="FILE",
                   help="project config: its [load] table says how to connect and publish (default: the one "
                        "the stack was brought up with); with --backend also the app (default ./gauntlet.toml)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.per_replica < 1:
        raise ValueError("--per-replica must be at least 1")
    if args.backend is None:
        state = load_state(args.state)
        return smoke(args, state, _load_config(args.config or "", args.state or ""))
    from harness.backends import make_stack, preflight
    from harness.config import load_project_config

    config = load_project_config(args.config)
    load = _load_config(config.path, "") if config.path else LoadConfig()
    spec = StackSpec(replicas=args.replicas, broker=args.broker, app=config.app, name="smoke",
                     runs_dir=Path(args.runs_dir), backend=args.backend, config_path=config.path,
                     docker=DockerOptions(app_image=config.app.docker_image, app_command=config.app.docker_command))
    spec.validate()
    preflight(spec)
    stack = make_stack(spec, progress=lambda m: print(f"  {m}", flush=True))
    try:
        return smoke(args, stack.up(), load)
    finally:
        stack.down()


def _load_config(explicit: str, state_path: str) -> LoadConfig:
    try:
        return load_config(explicit, state_path=state_path)
    except LoadConfigError as exc:
        raise ValueError(str(exc)) from None


def smoke(args: argparse.Namespace, state, config: LoadConfig) -> int:
    live = [r for r in state.replicas if r.status != "exited"]
    messages = args.messages if args.messages is not None else 10 * max(1, len(live)) ** 2
    print(f"smoke: {args.per_replica} subscribers on each of {len(live)} replicas, {messages} notifications "
          f"published to each replica in turn ({config.adapter} adapter, {config.source}) ...", flush=True)
    try:
        result = run_smoke(state, messages=messages, per_replica=args.per_replica,
                           timeout=parse_duration(args.timeout), config=config)
    except AdapterError as exc:
        raise ValueError(f"{config.source}: {exc}") from None
    except ConnectFailed as exc:
        print(f"FAIL: {exc}")
        return 1
    print(result.table())
    for failure in result.publish_failures[:5]:
        print(f"  publish failed: {failure}")
    return 0 if result.ok else 1
