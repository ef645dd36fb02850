"""The custom Locust arguments every gauntlet scenario shares, and their typed form.

Arguments are registered through `events.init_command_line_parser`, so they show in
`locust --help`, can be set in the web UI, and travel to workers with the parsed
options. A scenario module sets its own defaults (stages, weights, rates) before the
parser is built; the command line, `GAUNTLET_*` variables or the web UI override them.
Values stay plain str/int/float/bool because Locust ships them to workers as msgpack.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from harness.units import parse_duration

from scenarios.stages import EXAMPLE, argparse_stages


class SettingsError(ValueError):
    """A custom argument out of range; the message names the argument."""


@dataclass(frozen=True)
class ScenarioDefaults:
    """What a locustfile changes about the shared users: its load profile."""

    name: str = "ramp"
    stages: str = EXAMPLE
    subscriber_weight: int = 8
    publisher_weight: int = 1
    reader_weight: int = 1
    publishers: int = 0  # fixed publisher count per run; 0 = by weight
    publish_rate: float = 5.0  # per publisher user, messages/s
    broadcast_ratio: float = 0.05
    storm_at: str = ""


_scenario = ScenarioDefaults()


def set_scenario(defaults: ScenarioDefaults) -> None:
    global _scenario
    _scenario = defaults


def scenario() -> ScenarioDefaults:
    return _scenario


@dataclass(frozen=True)
class LoadSettings:
    """The parsed custom arguments, checked and in the units the code uses."""

    scenario: str
    stages: str
    adapter: str
    config: str
    state: str
    run_dir: str
    allow_remote: bool
    seed: int | None
    subscriber_weight: int
    publisher_weight: int
    reader_weight: int
    publishers: int
    user_pool: int
    publish_rate: float
    broadcast_ratio: float
    max_inflight: int
    publish_timeout: float
    read_rate: float
    item_count: int
    connect_timeout: float
    reconnect_cap: float
    reconnects_per_minute: int
    resume_margin: float
    storm_at: tuple[float, ...]
    storm_jitter: float
    ws_stats: bool
    flush_every: int
    ship_timeout: float
    ship_records: str


def register_arguments(parser) -> None:
    """The `events.init_command_line_parser` listener."""
    d = _scenario
    group = parser.add_argument_group(
        "gauntlet", "Load against a gauntlet stack (defaults from the scenario; see docs/load.md)"
    )

    def add(flag: str, **kw) -> None:
        env = "GAUNTLET_" + flag.lstrip("-").removeprefix("gauntlet-").replace("-", "_").upper()
        # parser.add_argument is what marks an argument for the web UI; the action
        # then moves into our group so `--help` lists it under "gauntlet".
        action = parser.add_argument(flag, env_var=env, **kw)
        for other in parser._action_groups:
            if action in other._group_actions:
                other._group_actions.remove(action)
        group._group_actions.append(action)

    add("--stages", type=argparse_stages, default=d.stages,
        help=f"k6-style stages <duration>:<users>,... (default {d.stages})")
    add("--adapter", default="",
        help="target adapter: reference, jsonws, socketio (default: [load].adapter in gauntlet.toml, else reference)")
    add("--gauntlet-config", default="", include_in_web_ui=False,
        help="project config with the [load] table (default ./gauntlet.toml) [GAUNTLET_CONFIG]")
    add("--state", default="", include_in_web_ui=False,
        help="stack state file (default $GAUNTLET_STATE, else .gauntlet/stack.json)")
    add("--run-dir", default="", include_in_web_ui=False,
        help="run directory for raw records (default $GAUNTLET_RUN_DIR, else the running stack's, "
             "else runs/<time>-<scenario>)")
    add("--allow-remote", action="store_true", default=False, include_in_web_ui=False,
        help="allow load to a non-loopback host (refused by default)")
    add("--seed", type=int, default=-1, help="random seed (-1 = pick one and print it)")
    add("--subscriber-weight", type=int, default=d.subscriber_weight, help="weight of WebSocket subscribers")
    add("--publisher-weight", type=int, default=d.publisher_weight, help="weight of HTTP publishers")
    add("--reader-weight", type=int, default=d.reader_weight, help="weight of HTTP readers")
    add("--publishers", type=int, default=d.publishers,
        help="fixed number of publishers for the whole run, spawned first (0 = by weight)")
    add("--user-pool", type=int, default=100,
        help="K: subscriber i is user u{i %% K}; publishers address u0..u{K-1}")
    add("--publish-rate", type=float, default=d.publish_rate,
        help="messages/s per publisher, open model (does not slow down with the SUT)")
    add("--broadcast-ratio", type=float, default=d.broadcast_ratio,
        help="share of publishes that are broadcasts (0..1)")
    add("--max-inflight", type=int, default=100,
        help="publishes in flight per publisher; beyond it a send is recorded as fail/overload")
    add("--publish-timeout", default="10s", help="publish response deadline; past it the outcome is unknown")
    add("--read-rate", type=float, default=1.0, help="reads/s per reader")
    add("--item-count", type=int, default=100, help="readers fetch item ids 1..N")
    add("--connect-timeout", default="10s", help="WebSocket connect + welcome deadline")
    add("--reconnect-cap", default="10s", help="longest reconnect backoff (exponential, full jitter)")
    add("--reconnects-per-minute", type=int, default=30, help="connect attempts per subscriber per minute, at most")
    add("--resume-margin", default="1.5s",
        help="resume after the highest id seen this long before a disconnect (covers out-of-order fan-out)")
    add("--storm-at", default=d.storm_at,
        help="reconnect storms: times since start when every socket reconnects at once, e.g. 30s,60s")
    add("--storm-jitter", default="0s", help="spread each storm's reconnects over this long")
    add("--no-ws-stats", action="store_true", default=False,
        help="do not show deliveries as 'WS deliver ...' entries in Locust's statistics")
    add("--flush-every", type=int, default=2000, include_in_web_ui=False,
        help="records per CSV batch (also flushed every second)")
    add("--ship-timeout", default="120s", include_in_web_ui=False,
        help="how long the master waits for workers to ship their records at test stop")
    add("--ship-records", default="auto", choices=("auto", "always"), include_in_web_ui=False,
        help="workers: auto = write into the master's run dir when it is visible here, else ship "
             "at test stop; always = ship even when it is visible")


def _duration(options: argparse.Namespace, name: str) -> float:
    raw = getattr(options, name)
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SettingsError(f"--{name.replace('_', '-')}: {exc}") from None


def _durations(options: argparse.Namespace, name: str) -> tuple[float, ...]:
    raw = str(getattr(options, name) or "").strip()
    if not raw:
        return ()
    out = []
    for part in raw.split(","):
        try:
            out.append(parse_duration(part.strip()))
        except ValueError as exc:
            raise SettingsError(f"--{name.replace('_', '-')}: {exc}") from None
    return tuple(sorted(out))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


def from_options(options: argparse.Namespace) -> LoadSettings:
    """Typed, checked settings; raises SettingsError naming the bad argument."""
    s = LoadSettings(
        scenario=_scenario.name,
        stages=str(options.stages),
        adapter=str(options.adapter or ""),
        config=str(options.gauntlet_config or ""),
        state=str(options.state or ""),
        run_dir=str(options.run_dir or ""),
        allow_remote=bool(options.allow_remote),
        seed=None if int(options.seed) < 0 else int(options.seed),
        subscriber_weight=int(options.subscriber_weight),
        publisher_weight=int(options.publisher_weight),
        reader_weight=int(options.reader_weight),
        publishers=int(options.publishers),
        user_pool=int(options.user_pool),
        publish_rate=float(options.publish_rate),
        broadcast_ratio=float(options.broadcast_ratio),
        max_inflight=int(options.max_inflight),
        publish_timeout=_duration(options, "publish_timeout"),
        read_rate=float(options.read_rate),
        item_count=int(options.item_count),
        connect_timeout=_duration(options, "connect_timeout"),
        reconnect_cap=_duration(options, "reconnect_cap"),
        reconnects_per_minute=int(options.reconnects_per_minute),
        resume_margin=_duration(options, "resume_margin"),
        storm_at=_durations(options, "storm_at"),
        storm_jitter=_duration(options, "storm_jitter"),
        ws_stats=not bool(options.no_ws_stats),
        flush_every=int(options.flush_every),
        ship_timeout=_duration(options, "ship_timeout"),
        ship_records=str(options.ship_records),
    )
    for name in ("subscriber_weight", "publisher_weight", "reader_weight", "publishers"):
        _check(getattr(s, name) >= 0, f"--{name.replace('_', '-')} must be 0 or more, not {getattr(s, name)}")
    _check(s.subscriber_weight + s.publisher_weight + s.reader_weight + s.publishers > 0,
           "every user weight is 0 and --publishers is 0: nothing to run")
    _check(1 <= s.user_pool <= 10_000_000, f"--user-pool must be between 1 and 10000000, not {s.user_pool}")
    _check(0 <= s.publish_rate <= 100_000, f"--publish-rate must be between 0 and 100000 per publisher, not {s.publish_rate}")
    _check(0.0 <= s.broadcast_ratio <= 1.0, f"--broadcast-ratio must be between 0 and 1, not {s.broadcast_ratio}")
    _check(1 <= s.max_inflight <= 100_000, f"--max-inflight must be between 1 and 100000, not {s.max_inflight}")
    _check(s.publish_timeout > 0, "--publish-timeout must be more than 0")
    _check(0 <= s.read_rate <= 10_000, f"--read-rate must be between 0 and 10000, not {s.read_rate}")
    _check(s.item_count >= 1, f"--item-count must be 1 or more, not {s.item_count}")
    _check(s.connect_timeout > 0, "--connect-timeout must be more than 0")
    _check(s.reconnect_cap >= 0.1, "--reconnect-cap must be at least 100ms")
    _check(1 <= s.reconnects_per_minute <= 6000,
           f"--reconnects-per-minute must be between 1 and 6000, not {s.reconnects_per_minute}")
    _check(100 <= s.flush_every <= 1_000_000, f"--flush-every must be between 100 and 1000000, not {s.flush_every}")
    return s


class _PlainParser(argparse.ArgumentParser):
    """argparse that accepts Locust's extra add_argument keywords and ignores them."""

    def add_argument(self, *args, **kwargs):
        for extra in ("env_var", "include_in_web_ui", "is_secret", "is_required", "is_multiple"):
            kwargs.pop(extra, None)
        return super().add_argument(*args, **kwargs)


def parse_args(argv: list[str]) -> LoadSettings:
    """Settings from a command line without Locust's parser, for tools and tests that
    must not import Locust (importing it monkey-patches the interpreter with gevent)."""
    parser = _PlainParser(prog="gauntlet-load", exit_on_error=False)
    parser.add_argument("--host", default=None)
    register_arguments(parser)
    return from_options(parser.parse_args(argv))
