"""`gauntlet up`: bring a stack up and keep it up until Ctrl-C or `gauntlet down`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.config import load_project_config
from harness.control import ControlServer
from common.liveness import pid_alive
from harness.spec import BACKENDS, REDIS_PERSISTENCE, REFERENCE_BROKERS, DockerOptions, StackSpec
from harness.servers.nginx import LB_STRATEGIES
from harness.backends import make_stack, preflight
from common.state import StateError, load_state, state_path
from common.units import parse_duration

DESCRIPTION = """\
Bring up a multi-replica stack of real local processes: Postgres, Redis, N replicas of
the app under test (the reference SUT unless gauntlet.toml names your app), a fault
proxy in front of each replica's dependencies, and nginx in front of the replicas.
Everything binds to 127.0.0.1 on free ports. The state (URLs, pids, secrets) goes to
.gauntlet/stack.json so that `gauntlet status|smoke|chaos|down` and
`locust -f scenarios/ramp.py` find the stack from another terminal.
"""
EPILOG = """\
examples:
  gauntlet up --replicas 3 --broker redis        stays in the foreground; Ctrl-C tears down
  gauntlet up --detach --broker postgres         returns once the stack is ready
  gauntlet up --lb-strategy ip_hash              sticky sessions, as some users configure
  gauntlet up --defects no-catchup               a deliberately broken reference SUT
"""


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that brings a stack up (up, run, compare)."""
    parser.add_argument("--replicas", type=int, default=3, metavar="N", help="number of app replicas (default 3)")
    parser.add_argument("--broker", default="redis", metavar="NAME",
                        help=f"fan-out broker of the reference SUT: {', '.join(REFERENCE_BROKERS)} (default redis)")
    parser.add_argument("--lb-strategy", default="round_robin", choices=LB_STRATEGIES,
                        help="nginx load-balancing strategy (default round_robin)")
    parser.add_argument("--config", metavar="FILE", help="project config (default ./gauntlet.toml or pyproject [tool.gauntlet])")
    parser.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run directories go (default ./runs)")
    parser.add_argument("--no-fault-proxies", action="store_true",
                        help="connect replicas straight to Postgres/Redis (no dependency faults possible)")
    parser.add_argument("--restart-delay", metavar="DURATION",
                        help="restart policy: restart a replica that died after this delay, as platforms do")
    parser.add_argument("--redis-persistence", default="aof", choices=REDIS_PERSISTENCE,
                        help="aof: Redis keeps its data across a crash (append-only file); none: a crash "
                             "restarts it empty (default aof)")
    parser.add_argument("--defects", metavar="LIST",
                        help="switch on defects of the reference SUT (negative controls), comma separated")
    parser.add_argument("--startup-timeout", default="60s", metavar="DURATION", help="deadline for the whole start (default 60s)")
    parser.add_argument("--backend", default="local", choices=BACKENDS,
                        help="local processes (default), docker containers, or a docker swarm service")
    parser.add_argument("--port", type=int, metavar="PORT",
                        help="publish the load balancer on this 127.0.0.1 port (default: a free one)")
    docker = parser.add_argument_group("docker and swarm backends")
    docker.add_argument("--toxiproxy-image", metavar="IMAGE",
                        help="the fault proxy's image, e.g. the real Toxiproxy (default gauntlet/faultproxy)")


def spec_from_args(args: argparse.Namespace, name: str) -> StackSpec:
    from sut.defects import parse_defects

    config = load_project_config(args.config)
    defects = getattr(args, "defects", None)
    if defects is not None:
        if not config.app.is_reference:
            raise ValueError("--defects switches on defects of the reference SUT; this project runs its own app")
        chosen = parse_defects(defects).names  # ValueError naming an unknown defect
        if not chosen:
            raise ValueError(f"--defects {defects!r} names no defect")
    env = {"SUT_DEFECTS": args.defects} if defects else {}
    return StackSpec(
        replicas=args.replicas, broker=args.broker, lb_strategy=args.lb_strategy, app=config.app,
        config_path=config.path,
        name=name, runs_dir=Path(args.runs_dir), fault_proxies=not args.no_fault_proxies,
        startup_timeout=parse_duration(args.startup_timeout),
        restart_delay=parse_duration(args.restart_delay) if args.restart_delay else None,
        replica_env=env, backend=getattr(args, "backend", "local"), lb_port=getattr(args, "port", None),
        docker=DockerOptions(toxiproxy_image=getattr(args, "toxiproxy_image", None),
                             app_image=config.app.docker_image, app_command=config.app.docker_command),
        redis_persistence=getattr(args, "redis_persistence", "aof"),
    )


def add_parser(sub) -> None:
    p = sub.add_parser("up", help="bring a stack up (stays up until Ctrl-C or `gauntlet down`)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_options(p)
    p.add_argument("--detach", action="store_true", help="run the stack in the background and return once it is ready")
    p.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")
    p.set_defaults(run=run)


def _refuse_if_running(path: Path) -> None:
    try:
        state = load_state(path)
    except StateError:
        return
    if pid_alive(state.harness_pid):
        raise SystemExit(f"gauntlet: a stack is already up (harness pid {state.harness_pid}, {state.lb_url}); "
                         f"run `gauntlet down` first, or use another --state file")
    path.unlink(missing_ok=True)  # stale: its harness is gone and the reaper cleaned up


def run(args: argparse.Namespace) -> int:
    path = state_path(args.state).resolve()
    _refuse_if_running(path)
    spec = spec_from_args(args, "up")
    spec.state_path = path
    spec.validate()
    preflight(spec)
    if args.detach:
        return _detach(args, path)
    return serve(spec)


def serve(spec: StackSpec) -> int:
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    stack = make_stack(spec, progress=lambda m: print(f"  {m}", flush=True))
    print(f"bringing up {spec.replicas} replicas, broker {spec.broker}, lb {spec.lb_strategy}"
          f"{'' if spec.backend == 'local' else ', on ' + spec.backend} ...", flush=True)
    # TERM during start-up must tear down like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.up()
    except KeyboardInterrupt:
        print("interrupted; torn down", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    # From here on the stack is up: every way out, a signal in the next lines included,
    # tears it down, and a stop asked for by a signal is a clean stop (exit 0).
    control = None
    try:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        control = ControlServer(stack)
        control.start()
        stack.control_url = control.url
        state = stack.publish_state()
        print(f"stack up: load balancer {state.lb_url}  run dir {state.run_dir}")
        print(f"state in {spec.state_path}; `gauntlet status`, `gauntlet smoke`, `gauntlet down` from another "
              "terminal", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:  # Ctrl-C before our handler was in place: the same stop
        pass
    finally:
        print("tearing down ...", flush=True)
        t0 = time.monotonic()
        if control is not None:
            control.stop()
        stack.down()
        print(f"stack down ({time.monotonic() - t0:.1f}s)", flush=True)
    return 0


def _detach(args: argparse.Namespace, path: Path) -> int:
    argv = [sys.executable, "-m", "harness.cli", "up", "--state", str(path)]
    for flag in ("replicas", "broker", "lb_strategy", "config", "runs_dir", "restart_delay", "defects",
                 "startup_timeout", "backend", "port", "toxiproxy_image", "redis_persistence"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.no_fault_proxies:
        argv.append("--no-fault-proxies")
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name("up.log")
    with open(log, "wb") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    deadline = time.monotonic() + parse_duration(args.startup_timeout) + 10
    print(f"starting in the background (pid {child.pid}, log {log}) ...", flush=True)
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(log.read_text(errors="replace"), file=sys.stderr)
            print(f"gauntlet: the stack failed to start (exit {child.returncode})", file=sys.stderr)
            return 1
        try:
            state = load_state(path)
            if state.harness_pid == child.pid and state.control_url:
                print(f"stack up: load balancer {state.lb_url}  run dir {state.run_dir}")
                return 0
        except StateError:
            pass
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGTERM)
    print("gauntlet: the stack did not come up in time", file=sys.stderr)
    return 1
