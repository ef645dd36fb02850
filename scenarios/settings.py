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

from common.units import parse_duration

from scenarios.payload import PayloadSize, PayloadSizeError, parse_payload_size
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
    first_connect_spread: float
    reconnect_cap: float
    reconnects_per_minute: int
    resume_margin: float
    storm_at: tuple[float, ...]
    storm_jitter: float
    ws_stats: bool
    flush_every: int
    ship_timeout: float
    ship_records: str
    payload_size: PayloadSize | None = None
    hostile: int = 1
    hostile_rate: float = 1.0
    slow_readers: int = 0
    slow_read_delay: float = 0.2
    stalled_readers: int = 0
    stall_every: float = 10.0
    stall_for: float = 5.0
    vanishing: int = 0
    vanish_every: float = 8.0
    heal_burst: int = 0
    slow_requests: int = 0
    slow_request_time: float = 3.0
    slow_request_path: str = "/api/slow"


# Every load setting a scenario reads can also be set in gauntlet.toml's [load] table,
# under its argument's name with underscores (`broadcast_ratio = 0.2`), and is then the
# default that the command line, GAUNTLET_* variables and the web UI override. The kind
# says which TOML values a key takes. The ones left out say where a run goes or how it
# is repeated, not what load it puts on the app: they stay on the command line.
CONFIG_KEYS: dict[str, str] = {
    "stages": "stages",
    "subscriber_weight": "int", "publisher_weight": "int", "reader_weight": "int", "publishers": "int",
    "user_pool": "int", "publish_rate": "number", "broadcast_ratio": "number", "max_inflight": "int",
    "publish_timeout": "duration", "read_rate": "number", "item_count": "int",
    "connect_timeout": "duration", "first_connect_spread": "duration", "reconnect_cap": "duration",
    "reconnects_per_minute": "int",
    "resume_margin": "duration", "storm_at": "durations", "storm_jitter": "duration",
    "ws_stats": "bool", "flush_every": "int", "ship_timeout": "duration", "ship_records": "text",
    "payload_size": "payload", "hostile": "int", "hostile_rate": "number",
    "slow_readers": "int", "slow_read_delay": "duration", "stalled_readers": "int", "stall_every": "duration",
    "stall_for": "duration", "vanishing": "int", "vanish_every": "duration", "heal_burst": "int",
    "slow_requests": "int", "slow_request_time": "duration", "slow_request_path": "text",
}
COMMAND_LINE_ONLY: dict[str, str] = {
    "seed": "--seed (a run is repeated by its seed, which `gauntlet run` always passes)",
    "allow_remote": "--allow-remote (load beyond loopback needs an explicit flag)",
    "state": "--state", "run_dir": "--run-dir", "gauntlet_config": "--gauntlet-config",
}


def argument_defaults(d: ScenarioDefaults | None = None) -> dict[str, object]:
    """Every custom argument's default, by destination name, for a scenario."""
    d = d or _scenario
    return {
        "stages": d.stages, "adapter": "", "gauntlet_config": "", "state": "", "run_dir": "",
        "allow_remote": False, "seed": -1,
        "subscriber_weight": d.subscriber_weight, "publisher_weight": d.publisher_weight,
        "reader_weight": d.reader_weight, "publishers": d.publishers, "user_pool": 100,
        "publish_rate": d.publish_rate, "broadcast_ratio": d.broadcast_ratio, "max_inflight": 100,
        "publish_timeout": "10s", "read_rate": 1.0, "item_count": 100, "connect_timeout": "10s",
        "first_connect_spread": "1s", "reconnect_cap": "10s", "reconnects_per_minute": 30, "resume_margin": "1.5s",
        "storm_at": d.storm_at, "storm_jitter": "0s", "no_ws_stats": False, "flush_every": 2000,
        "ship_timeout": "120s", "ship_records": "auto", "payload_size": "",
        "hostile": 1, "hostile_rate": 1.0,
        "slow_readers": 0, "slow_read_delay": "200ms", "stalled_readers": 0, "stall_every": "10s",
        "stall_for": "5s", "vanishing": 0, "vanish_every": "8s", "heal_burst": 0,
        "slow_requests": 0, "slow_request_time": "3s", "slow_request_path": "/api/slow",
    }


def config_value(key: str, value: object, where: str) -> tuple[str, object]:
    """A [load] value as the argument default it stands for: (destination, value).
    Raises SettingsError naming `where` (e.g. "gauntlet.toml: load.publish_rate")."""
    kind = CONFIG_KEYS[key]
    if kind == "int":
        _check(isinstance(value, int) and not isinstance(value, bool), f"{where} must be an integer, not {value!r}")
    elif kind == "number":
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} must be a number, not {value!r}")
        value = float(value)
    elif kind == "bool":
        _check(isinstance(value, bool), f"{where} must be true or false, not {value!r}")
    elif kind == "durations":
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            value = ",".join(str(v) for v in value)
        _check(isinstance(value, str), f'{where} must be durations, e.g. ["30s", "60s"], not {value!r}')
    elif kind == "duration":
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool),
               f'{where} must be a duration, e.g. "10s" or 10, not {value!r}')
        value = str(value)
        try:
            parse_duration(value)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    elif kind == "payload":
        _check(isinstance(value, (str, int)) and not isinstance(value, bool),
               f'{where} must be bytes or a range, e.g. 2000 or "40..12000", not {value!r}')
        value = str(value)
        try:
            parse_payload_size(value)
        except PayloadSizeError as exc:
            raise SettingsError(f"{where} {exc}") from None
    elif kind == "stages":
        _check(isinstance(value, str), f'{where} must be stages, e.g. "10s:50,40s:50", not {value!r}')
        try:
            value = argparse_stages(value)
        except argparse.ArgumentTypeError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    else:
        _check(isinstance(value, str), f"{where} must be a string, not {value!r}")
    if key == "ws_stats":
        return "no_ws_stats", not value
    return key, value


def register_arguments(parser, overrides: dict[str, object]) -> None:
    """The load settings' arguments. Defaults are the scenario's, then `overrides` (the
    [load] table of the project config: scenarios/plugin.py finds it)."""
    defaults = argument_defaults()
    defaults.update(overrides)
    group = parser.add_argument_group(
        "gauntlet", "Load against a gauntlet stack (defaults from the scenario and [load] in gauntlet.toml; "
                    "see docs/load.md)"
    )

    def add(flag: str, **kw) -> None:
        env = "GAUNTLET_" + flag.lstrip("-").removeprefix("gauntlet-").replace("-", "_").upper()
        dest = flag.lstrip("-").replace("-", "_")
        kw["default"] = defaults[dest]
        # parser.add_argument is what marks an argument for the web UI; the action
        # then moves into our group so `--help` lists it under "gauntlet".
        action = parser.add_argument(flag, env_var=env, **kw)
        for other in parser._action_groups:
            if action in other._group_actions:
                other._group_actions.remove(action)
        group._group_actions.append(action)

    # Every listener binds to loopback unless asked otherwise (Locust's default is every
    # interface): the web UI drives load, the master hands out the stack's credentials.
    parser.set_defaults(web_host="127.0.0.1", master_bind_host="127.0.0.1")
    add("--stages", type=argparse_stages,
        help=f"k6-style stages <duration>:<users>,... (default {defaults['stages']})")
    add("--adapter",
        help="target adapter: reference, jsonws, socketio (default: [load].adapter in gauntlet.toml, else reference)")
    add("--gauntlet-config", include_in_web_ui=False,
        help="project config with the [load] table (default: the stack's, else ./gauntlet.toml) [GAUNTLET_CONFIG]")
    add("--state", include_in_web_ui=False,
        help="stack state file (default $GAUNTLET_STATE, else .gauntlet/stack.json)")
    add("--run-dir", include_in_web_ui=False,
        help="run directory for raw records (default $GAUNTLET_RUN_DIR, else the running stack's, "
             "else runs/<time>-<scenario>)")
    add("--allow-remote", action="store_true", include_in_web_ui=False,
        help="allow load to a non-loopback host (refused by default)")
    add("--seed", type=int, help="random seed (-1 = pick one and print it)")
    add("--subscriber-weight", type=int, help="weight of WebSocket subscribers")
    add("--publisher-weight", type=int, help="weight of HTTP publishers")
    add("--reader-weight", type=int, help="weight of HTTP readers")
    add("--publishers", type=int,
        help="fixed number of publishers for the whole run, spawned first (0 = by weight)")
    add("--user-pool", type=int,
        help="K: subscriber i is user u{i mod K}; publishers address u0..u{K-1}")
    add("--publish-rate", type=float,
        help="messages/s per publisher, open model (does not slow down with the SUT)")
    add("--broadcast-ratio", type=float,
        help="share of publishes that are broadcasts (0..1)")
    add("--max-inflight", type=int,
        help="publishes in flight per publisher; beyond it a send is recorded as fail/overload")
    add("--publish-timeout", help="publish response deadline; past it the outcome is unknown")
    add("--read-rate", type=float, help="reads/s per reader")
    add("--item-count", type=int, help="readers fetch item ids 1..N")
    add("--connect-timeout", help="WebSocket connect + welcome (+ on-connect actions) deadline")
    add("--first-connect-spread",
        help="beyond the first 10 subscribers a process starts within this long, each first "
             "connects after a random part of it, so a big stage step does not connect in one "
             "burst (default 1s: one tick of the stages; 0 = all at once)")
    add("--reconnect-cap", help="longest reconnect backoff (exponential, full jitter)")
    add("--reconnects-per-minute", type=int, help="connect attempts per subscriber per minute, at most")
    add("--resume-margin",
        help="resume after the highest id seen this long before a disconnect (covers out-of-order fan-out)")
    add("--storm-at",
        help="reconnect storms: times since start when every socket reconnects at once, e.g. 30s,60s")
    add("--storm-jitter", help="spread each storm's reconnects over this long")
    add("--payload-size",
        help="bytes of each notification's data as UTF-8 JSON, fixed (2000) or a range (40..12000), "
             "padded with multibyte text and a digest that subscribers verify (default: unpadded, ~60 bytes)")
    add("--hostile", type=int,
        help="hostile users (forged, truncated, foreign tokens, no publisher key), a fixed count "
             "beside the others; 0 = none, and the security check cannot judge (default 1)")
    add("--hostile-rate", type=float, help="attempts/s per hostile user (default 1)")
    add("--slow-readers", type=int,
        help="subscribers (a fixed count) that pause --slow-read-delay before reading each frame")
    add("--slow-read-delay", help="slow readers' pause per frame (default 200ms)")
    add("--stalled-readers", type=int,
        help="subscribers (a fixed count) that stop reading for --stall-for every --stall-every")
    add("--stall-every", help="how often a stalled reader stops reading (default 10s)")
    add("--stall-for", help="how long it stops reading (default 5s)")
    add("--vanishing", type=int,
        help="subscribers (a fixed count) that drop their socket without a close frame after about "
             "--vanish-every, then reconnect")
    add("--vanish-every", help="a vanishing subscriber's mean connection lifetime (default 8s)")
    add("--heal-burst", type=int,
        help="each publisher sends this many extra messages at once when a fault heals (default 0)")
    add("--slow-requests", type=int,
        help="users (a fixed count) that keep one slow request in flight each, for the shutdown check")
    add("--slow-request-time", help="how long each slow request works on the server (default 3s)")
    add("--slow-request-path",
        help='the slow endpoint: POST <path> {"delay": seconds} (default /api/slow, the reference SUT\'s)')
    add("--no-ws-stats", action="store_true",
        help="do not show deliveries as 'WS deliver ...' entries in Locust's statistics")
    add("--flush-every", type=int, include_in_web_ui=False,
        help="records per CSV batch (also flushed every second)")
    add("--ship-timeout", include_in_web_ui=False,
        help="how long the master waits for workers to ship their records at test stop")
    add("--ship-records", choices=("auto", "always"), include_in_web_ui=False,
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


def _payload_size(options: argparse.Namespace) -> PayloadSize | None:
    try:
        return parse_payload_size(getattr(options, "payload_size", ""))
    except PayloadSizeError as exc:
        raise SettingsError(f"--payload-size {exc}") from None


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
        first_connect_spread=_duration(options, "first_connect_spread"),
        reconnect_cap=_duration(options, "reconnect_cap"),
        reconnects_per_minute=int(options.reconnects_per_minute),
        resume_margin=_duration(options, "resume_margin"),
        storm_at=_durations(options, "storm_at"),
        storm_jitter=_duration(options, "storm_jitter"),
        ws_stats=not bool(options.no_ws_stats),
        flush_every=int(options.flush_every),
        ship_timeout=_duration(options, "ship_timeout"),
        ship_records=str(options.ship_records),
        payload_size=_payload_size(options),
        hostile=int(options.hostile),
        hostile_rate=float(options.hostile_rate),
        slow_readers=int(options.slow_readers),
        slow_read_delay=_duration(options, "slow_read_delay"),
        stalled_readers=int(options.stalled_readers),
        stall_every=_duration(options, "stall_every"),
        stall_for=_duration(options, "stall_for"),
        vanishing=int(options.vanishing),
        vanish_every=_duration(options, "vanish_every"),
        heal_burst=int(options.heal_burst),
        slow_requests=int(options.slow_requests),
        slow_request_time=_duration(options, "slow_request_time"),
        slow_request_path=str(options.slow_request_path),
    )
    for name in ("subscriber_weight", "publisher_weight", "reader_weight", "publishers"):
        _check(getattr(s, name) >= 0, f"--{name.replace('_', '-')} must be 0 or more, not {getattr(s, name)}")
    _check(s.subscriber_weight + s.publisher_weight + s.reader_weight + s.publishers > 0,
           "every user weight is 0 and --publishers is 0: nothing to run")
    _check(0 <= s.hostile <= 1000, f"--hostile must be between 0 and 1000, not {s.hostile}")
    _check(0 < s.hostile_rate <= 1000, f"--hostile-rate must be more than 0 and at most 1000, not {s.hostile_rate}")
    for name in ("slow_readers", "stalled_readers", "vanishing"):
        _check(0 <= getattr(s, name) <= 100_000,
               f"--{name.replace('_', '-')} must be between 0 and 100000, not {getattr(s, name)}")
    _check(0 < s.slow_read_delay <= 60, "--slow-read-delay must be more than 0 and at most 60s")
    _check(s.stall_for > 0 and s.stall_every > s.stall_for,
           f"--stall-every ({s.stall_every:g}s) must be longer than --stall-for ({s.stall_for:g}s), which is more than 0")
    _check(s.vanish_every >= 0.5, "--vanish-every must be at least 500ms")
    _check(0 <= s.heal_burst <= 100_000, f"--heal-burst must be between 0 and 100000, not {s.heal_burst}")
    _check(0 <= s.slow_requests <= 10_000, f"--slow-requests must be between 0 and 10000, not {s.slow_requests}")
    _check(0 < s.slow_request_time <= 30, "--slow-request-time must be more than 0 and at most 30s")
    _check(s.slow_request_path.startswith("/"), f"--slow-request-path must start with /, not {s.slow_request_path!r}")
    _check(1 <= s.user_pool <= 10_000_000, f"--user-pool must be between 1 and 10000000, not {s.user_pool}")
    _check(0 <= s.publish_rate <= 100_000, f"--publish-rate must be between 0 and 100000 per publisher, not {s.publish_rate}")
    _check(0.0 <= s.broadcast_ratio <= 1.0, f"--broadcast-ratio must be between 0 and 1, not {s.broadcast_ratio}")
    _check(1 <= s.max_inflight <= 100_000, f"--max-inflight must be between 1 and 100000, not {s.max_inflight}")
    _check(s.publish_timeout > 0, "--publish-timeout must be more than 0")
    _check(0 <= s.read_rate <= 10_000, f"--read-rate must be between 0 and 10000, not {s.read_rate}")
    _check(s.item_count >= 1, f"--item-count must be 1 or more, not {s.item_count}")
    _check(s.connect_timeout > 0, "--connect-timeout must be more than 0")
    _check(0 <= s.first_connect_spread <= 3600, "--first-connect-spread must be between 0 and 1h")
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


def parse_args(argv: list[str], load_table: dict | None = None, source: str = "gauntlet.toml") -> LoadSettings:
    """Settings from a command line without Locust's parser, for tools and tests that
    must not import Locust (importing it monkey-patches the interpreter with gevent).
    `load_table` is a [load] table to take defaults from (None: no project config)."""
    parser = _PlainParser(prog="gauntlet-load", exit_on_error=False)
    parser.add_argument("--host", default=None)
    register_arguments(parser, overrides=config_overrides(load_table or {}, source))
    return from_options(parser.parse_args(argv))


def config_overrides(table: dict, source: str) -> dict[str, object]:
    """The argument defaults a [load] table sets (its load settings; other keys ignored)."""
    out: dict[str, object] = {}
    for key, value in table.items():
        if key in CONFIG_KEYS:
            dest, converted = config_value(key, value, f"{source}: load.{key}")
            out[dest] = converted
    return out
