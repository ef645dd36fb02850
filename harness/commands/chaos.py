"""`gauntlet chaos`: faults by hand or from a timeline, against the running stack.

Runs in its own terminal next to `gauntlet up` (or `gauntlet run`): pid signals go
straight to the replicas, toxics straight to the fault proxy, and restarts, scaling,
draining and dependency crashes through the harness's control API. Every fault is
journalled in the stack's run directory (faults.jsonl) and always healed: at the end
of --for, on Ctrl-C or SIGTERM, or later by `gauntlet chaos heal`.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from chaos.faults import CATALOGUE, describe_catalogue
from chaos.heal import heal_everything
from chaos.injector import Injector
from chaos.journal import Journal, read_journal
from chaos.monkey import DEFAULT_FAULTS, MonkeyConfig, monkey_timeline, new_seed, parse_range
from chaos.player import TimelinePlayer
from chaos.target import RemoteHandle
from chaos.timeline import load_timeline, shipped_timelines
from common.liveness import pid_alive
from harness.rundir import update_run_meta
from common.state import StateError, load_state
from common.units import format_duration, parse_duration

DESCRIPTION = """\
Inject faults into the running stack (started by `gauntlet up` or `gauntlet run`) and
heal them. A fault with --for is healed when the time is up or at once on Ctrl-C; a
fault without --for stays until `gauntlet chaos heal`. Every fault is recorded in the
run directory's fault journal (faults.jsonl), which the reports shade on their plots.
"""
EPILOG = """\
examples:
  gauntlet chaos list                                  every fault, its targets and parameters
  gauntlet chaos kill r2 --for 15s                     SIGKILL r2, start it again after 15 s
  gauntlet chaos kill r2 --for 30s --param restart-after=5s   ... with a platform-style restart policy
  gauntlet chaos pause r1 --for 10s                    a hung replica (SIGSTOP, then SIGCONT)
  gauntlet chaos partition r2 redis --for 20s          cut r2 off Redis; r1 and r3 keep it
  gauntlet chaos latency redis --for 30s -p latency=300ms -p jitter=50ms
  gauntlet chaos latency redis@r2 --for 30s            only r2's connection to Redis
  gauntlet chaos crash postgres --for 10s              SIGKILL the Postgres server, restart it after
  gauntlet chaos drain r3 --for 20s                    out of the load balancer and back
  gauntlet chaos rolling-restart                       a deploy, one replica at a time
  gauntlet chaos scale-out --for 30s -p count=2        two more replicas, removed after 30 s
  gauntlet chaos down redis                            stays down until:
  gauntlet chaos heal                                  heal everything, whoever injected it
  gauntlet chaos play replica-kill                     a shipped timeline (chaos/timelines/*.toml)
  gauntlet chaos play my-faults.toml                   your own timeline
  gauntlet chaos play --monkey --seed 7 --interval 10s..30s --faults kill,pause,latency --duration 5m
"""


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", metavar="FILE", help="state file (default .gauntlet/stack.json or $GAUNTLET_STATE)")


def add_parser(sub) -> None:
    p = sub.add_parser("chaos", help="inject faults into the running stack (kill, pause, partition, latency, ...)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])
    faults = p.add_subparsers(title="faults and commands", metavar="FAULT|list|heal|status|play")

    lst = faults.add_parser("list", help="the fault catalogue with targets and parameters",
                            description="Print every fault: what it does, its targets, parameters and heal.")
    lst.set_defaults(run=run_list)

    heal = faults.add_parser("heal", help="heal everything: toxics, paused, drained, dead replicas, crashed servers",
                             description="Heal every fault the journal shows as active (exactly, as its own heal "
                                         "does), then reset the fault proxy, SIGCONT every replica, undrain, and "
                                         "start dead replicas and crashed dependencies again.")
    _state_option(heal)
    heal.set_defaults(run=run_heal)

    status = faults.add_parser("status", help="faults active now (from the journal)",
                               description="List the faults the run's journal shows as active.")
    _state_option(status)
    status.set_defaults(run=run_status)

    play = faults.add_parser(
        "play", help="play a timeline (or a seeded random monkey) against the running stack",
        description="Play a timeline file or a shipped timeline by name "
                    f"({', '.join(shipped_timelines())}), or with --monkey a random timeline generated from a "
                    "seed (the same seed replays the same faults). Ctrl-C heals everything at once.",
        epilog="examples:\n  gauntlet chaos play replica-kill\n  gauntlet chaos play chaos/timelines/demo.toml\n"
               "  gauntlet chaos play --monkey --seed 7 --faults kill,pause,latency --interval 10s..30s "
               "--duration 3m\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    play.add_argument("timeline", nargs="?", metavar="TIMELINE", help="a .toml file or a shipped timeline's name")
    play.add_argument("--monkey", action="store_true", help="generate a random timeline from --seed instead")
    play.add_argument("--seed", type=int, help="monkey seed (default: a new one, printed)")
    play.add_argument("--faults", default=",".join(DEFAULT_FAULTS), metavar="LIST",
                      help=f"monkey: fault kinds to pick from (default {','.join(DEFAULT_FAULTS)})")
    play.add_argument("--interval", default="10s..30s", metavar="MIN..MAX",
                      help="monkey: time between fault starts (default 10s..30s)")
    play.add_argument("--hold", metavar="MIN..MAX", help="monkey: how long each fault lasts (default: half to all "
                                                         "of the shortest interval)")
    play.add_argument("--duration", default="5m", metavar="DURATION",
                      help="monkey: play for this long; every fault is healed before it ends (default 5m)")
    _state_option(play)
    play.set_defaults(run=run_play)

    for kind, cls in CATALOGUE.items():
        fp = faults.add_parser(kind, help=cls.summary, formatter_class=argparse.RawDescriptionHelpFormatter,
                               description=f"{cls.summary}.\nheal: {cls.heals}.", epilog=_fault_epilog(cls))
        fp.add_argument("target", nargs="?", default="", metavar="TARGET", help=cls.target_help)
        if cls.second_positional:
            fp.add_argument("second", nargs="?", metavar=cls.second_positional.upper(),
                            help=f"the {cls.second_positional} parameter, as a word")
        if cls.sustained:
            fp.add_argument("--for", dest="duration", metavar="DURATION",
                            help="heal after this long (Ctrl-C heals at once); without it the fault stays "
                                 "until `gauntlet chaos heal`")
        fp.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a fault parameter (repeatable); see below")
        _state_option(fp)
        fp.set_defaults(run=run_fault, kind=kind)


def _fault_epilog(cls) -> str:
    lines = [f"target: {cls.target_help}"]
    params = cls.param_lines()
    if params:
        lines.append("parameters (--param KEY=VALUE):")
        lines += [f"  {line}" for line in params]
    return "\n".join(lines)


# ---------------------------------------------------------------------- helpers


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def _connect(args: argparse.Namespace) -> tuple[RemoteHandle, Journal]:
    state = load_state(args.state)
    if not pid_alive(state.harness_pid):
        raise StateError(f"the stack's harness (pid {state.harness_pid}) is not running; the state is stale "
                         f"(`gauntlet down` removes it)")
    return RemoteHandle(state), Journal.in_run_dir(state.run_dir)


@contextlib.contextmanager
def _interruptible():
    """SIGTERM behaves as Ctrl-C: both must heal before the process goes."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _shielded():
    """While healing, a second Ctrl-C must not abandon the heal half-way."""
    def patience(signum, frame):
        print("  healing; please wait (the heal has its own deadlines)", file=sys.stderr, flush=True)
    previous = {s: signal.signal(s, patience) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param latency=200ms")
        params[key.strip()] = value.strip()
    return params


# ---------------------------------------------------------------------- commands


def run_list(args: argparse.Namespace) -> int:
    print(describe_catalogue())
    print(f"\nshipped timelines (gauntlet chaos play NAME): {', '.join(shipped_timelines())}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    handle, journal = _connect(args)
    active = [r for r in read_journal(journal.path) if r.active]
    if not active:
        print("no active faults")
    for record in active:
        print(f"{record.id}  {record.kind} {record.target}  since {time.strftime('%H:%M:%S', time.localtime(record.start))}"
              f"  {record.params}")
    return 0


def run_heal(args: argparse.Namespace) -> int:
    handle, journal = _connect(args)
    print("healing everything ...", flush=True)
    with _shielded():
        try:
            done = heal_everything(handle, journal, _say)
        except RuntimeError as exc:
            print(f"gauntlet: {exc}", file=sys.stderr)
            return 1
    print("healed" if done else "nothing to heal: the stack is clean", flush=True)
    return 0


def run_fault(args: argparse.Namespace) -> int:
    cls = CATALOGUE[args.kind]
    params = _params(args.param)
    if getattr(args, "second", None):
        params[cls.second_positional] = args.second
    duration = None
    if getattr(args, "duration", None) is not None:
        duration = parse_duration(args.duration)
        if duration <= 0:
            raise ValueError("--for must be more than 0s")
    handle, journal = _connect(args)
    fault = cls.build(args.target, params, handle.topology())
    injector = Injector(handle, journal, _say)
    leave_active = interrupted = False
    code = 0
    with _interruptible():
        try:
            injection = injector.inject(fault, duration)
            if cls.sustained and not injection.inject_error:
                if duration is None:
                    print(f"{fault.kind} {fault.target} is active [{injection.record.id}]; "
                          f"`gauntlet chaos heal` ends it", flush=True)
                    leave_active = True
                else:
                    _countdown(injection, duration)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: healing now", file=sys.stderr, flush=True)
        finally:
            if not leave_active:
                code = _finish(injector)
    return 130 if interrupted else code


def _countdown(injection, duration: float) -> None:
    end = time.monotonic() + duration
    next_line = time.monotonic() + 5.0
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.2))
        if time.monotonic() >= next_line and end - time.monotonic() > 1:
            _say(f"{injection.fault.kind} {injection.fault.target}: {format_duration(end - time.monotonic())} left")
            next_line += 5.0


def _finish(injector: Injector) -> int:
    """Heal whatever is active; 0 if every fault went well, 1 otherwise."""
    with _shielded():
        records = injector.heal_all()
    return 1 if any(r.outcome != "ok" for r in records) else 0


def run_play(args: argparse.Namespace) -> int:
    if args.monkey and args.timeline:
        raise ValueError("give a TIMELINE or --monkey, not both")
    if not args.monkey and not args.timeline:
        raise ValueError(f"name a timeline to play (shipped: {', '.join(shipped_timelines())}) or use --monkey")
    if args.seed is not None and not args.monkey:
        raise ValueError("--seed goes with --monkey (a timeline file plays the same every time)")
    timeline = None
    if args.timeline:
        timeline = load_timeline(args.timeline)  # bad files are refused before we touch the stack
    handle, journal = _connect(args)
    topology = handle.topology()
    run_dir = handle.run_dir()
    if args.monkey:
        seed = args.seed if args.seed is not None else new_seed()
        config = MonkeyConfig(seed=seed, faults=tuple(k.strip() for k in args.faults.split(",") if k.strip()),
                              interval=parse_range(args.interval), duration=parse_duration(args.duration),
                              hold=parse_range(args.hold, "hold") if args.hold else None)
        timeline = monkey_timeline(config, topology)
        print(f"monkey seed {seed} (replay with --seed {seed})", flush=True)
        if run_dir is not None:
            stored = Path(run_dir) / f"chaos-{timeline.name}.toml"
            stored.write_text(timeline.to_toml())
            update_run_meta(run_dir, chaos_seed=seed, chaos_timeline=str(stored))
            print(f"timeline stored in {stored}", flush=True)
    # The player validates the timeline against the stack before anything is printed or played.
    player = TimelinePlayer(timeline, handle, topology=topology, journal=journal, progress=_say)
    print(f"playing {timeline.name}: {len(timeline.faults)} faults over {format_duration(timeline.end())}", flush=True)
    for entry in timeline.faults:
        window = f"for {format_duration(entry.duration)}" if entry.duration else "(action)"
        print(f"  at {format_duration(entry.at):>6}  {entry.kind} {entry.target} {window}", flush=True)
    interrupted = False
    with _interruptible():
        try:
            player.start()
            shown, next_status = "", time.monotonic() + 5
            while not player.wait(timeout=0.5):
                status = player.status()
                if status and (status != shown or time.monotonic() >= next_status):
                    _say(f"active: {status}")
                    shown, next_status = status, time.monotonic() + 5
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: healing every active fault", file=sys.stderr, flush=True)
        finally:
            with _shielded():
                records = player.stop()
    failed = [r for r in records if r.outcome != "ok"]
    print(f"{len(records)} faults played, {len(failed)} failed" + (" (interrupted)" if interrupted else ""),
          flush=True)
    for record in failed:
        print(f"  {record.id} {record.kind} {record.target}: {record.outcome}: {record.error}", flush=True)
    if interrupted:
        return 130
    return 1 if failed else 0
