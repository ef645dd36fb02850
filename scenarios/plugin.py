"""Wires gauntlet into Locust through event listeners only (no runner subclassing).

    init_command_line_parser  our custom arguments (settings.py)
    init                      check settings, target and adapter; fail fast, one line
    test_start                records dir, recorder, the process context, samplers
                              (users and sockets; the process's own CPU and loop lag);
                              on the master: greet the workers (shipping.py)
    request                   every HTTP request -> http.csv (Locust's measurement hook)
    test_stop                 flush; a worker ships or reports; the master waits for all
    quitting                  stop users so every publish has an outcome, then close files

A locustfile calls `install(ScenarioDefaults(...))` and imports the user classes.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust import constant, constant_throughput, events
from locust.runners import (
    STATE_CLEANUP, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner,
)

from scenarios.adapters import AdapterError, Endpoint, TargetAdapter, make_adapter
from scenarios.adapters.base import replica_from
from scenarios.config import LoadConfig, LoadConfigError, config_defaults, load_config
from scenarios.health import probe_loop
from scenarios.limits import raise_open_files
from scenarios.locust_fixes import install as install_locust_fixes
from scenarios.process import LoadProcess, set_current
from scenarios.recorder import Recorder, resolve_run_dir
from scenarios.safety import RemoteTargetError, check_url, is_loopback_host
from scenarios.settings import (
    LoadSettings, ScenarioDefaults, SettingsError, from_options, register_arguments, set_scenario,
)
from scenarios.shipping import (
    CHALLENGE, HELLO, POOL, SHIP, Hello, RecordsReceiver, answer_challenge, ask_for_challenge, report_shared,
    shares_master_dir,
    ship_records, worker_token,
)
from scenarios.storm import run_storms
from scenarios.target import Target, TargetError, resolve_target
from scenarios.hostile import HostileClient
from scenarios.users import SHAPED_USERS, HostileUser, PublisherUser, ReaderUser, SlowRequestUser, SubscriberUser

log = logging.getLogger("gauntlet.load")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
USER_MISTAKES = (SettingsError, LoadConfigError, TargetError, AdapterError, RemoteTargetError)
SAMPLE_EVERY = 1.0


def fatal(message: str, quiet: bool = False) -> None:
    """A user mistake at startup: one line on stderr, exit 2, no traceback."""
    if not quiet:
        sys.stderr.write(f"gauntlet: error: {message}\n")
        sys.stderr.flush()
    sys.exit(2)


def apply_user_settings(environment: Any, settings: LoadSettings) -> None:
    """Weights and per-class knobs on the classes Locust will spawn."""
    for cls in environment.user_classes:
        shaped = next((name for shaped_cls, name in SHAPED_USERS.items() if issubclass(cls, shaped_cls)), None)
        if shaped is not None:
            cls.weight = 0
            cls.fixed_count = getattr(settings, shaped)
        elif issubclass(cls, SubscriberUser):
            cls.weight = settings.subscriber_weight
        elif issubclass(cls, PublisherUser):
            cls.weight = settings.publisher_weight
            cls.fixed_count = settings.publishers
            cls.concurrency = settings.max_inflight
            cls.network_timeout = settings.publish_timeout
            cls.connection_timeout = settings.publish_timeout
        elif issubclass(cls, ReaderUser):
            cls.weight = settings.reader_weight if settings.read_rate > 0 else 0
            cls.wait_time = constant_throughput(settings.read_rate) if settings.read_rate > 0 else constant(3600)
        elif issubclass(cls, SlowRequestUser):
            cls.weight = 0
            cls.fixed_count = settings.slow_requests
            cls.network_timeout = settings.slow_request_time + 30.0
        elif issubclass(cls, HostileUser):
            cls.weight = 0
            cls.fixed_count = settings.hostile
            cls.wait_time = constant_throughput(settings.hostile_rate)


def build_adapter(config: LoadConfig, target: Target, allow_remote: bool) -> TargetAdapter:
    check_url(target.http_url, allow_remote, "HTTP target")
    check_url(target.ws_url, allow_remote, "WebSocket target")
    adapter = make_adapter(config.adapter, Endpoint(target.http_url, target.ws_url, target.secret,
                                                    target.publisher_key), config.adapter_settings)
    for url in adapter.urls():
        check_url(url, allow_remote, f"{config.adapter} adapter URL")
    return adapter


def hostile_kinds(adapter: TargetAdapter, target: Target) -> list[str]:
    """The hostile attempts this adapter gives something to break (meta.json: an empty
    list tells the security check that the target presents no credential at all)."""
    import random

    endpoint = getattr(adapter, "endpoint", None)
    try:
        probe = HostileClient(adapter, target.http_url, getattr(endpoint, "publisher_key", "") or "",
                              lambda row: None, random.Random(0), lambda: 1)
    except Exception:  # an adapter the probe cannot read: the users will say so per attempt
        return []
    return [k.name for k in probe.kinds]


def subscriber_count(counts: dict[str, int], environment: Any) -> int:
    names = {c.__name__ for c in environment.user_classes if issubclass(c, SubscriberUser)}
    return sum(n for name, n in counts.items() if name in names)


@dataclass
class Plugin:
    environment: Any
    settings: LoadSettings
    role: str  # local | master | worker
    seed: int
    # This process's own command line. On a worker, Locust overwrites the custom
    # arguments with the master's at every spawn; where records go is the worker's call.
    local: LoadSettings | None = None
    run_dir: Path | None = None  # this run's directory (master / local: from _on_init; worker: at first start)
    receiver: RecordsReceiver | None = None
    hello: Hello | None = None
    recorder: Recorder | None = None
    proc: LoadProcess | None = None
    shipping: bool = False
    cycle: int = 0
    greenlets: list[gevent.Greenlet] = field(default_factory=list)

    # -- lifecycle ----------------------------------------------------------------------

    def on_test_start(self, environment: Any, **_: Any) -> None:
        try:
            self.settings = from_options(environment.parsed_options)
        except SettingsError as exc:
            log.error("gauntlet: %s (keeping the previous settings)", exc)
        if self.role != "worker":
            apply_user_settings(environment, self.settings)
        try:
            if self.role == "master":
                self._start_master()
            else:
                self._start_load_process()
        except USER_MISTAKES as exc:
            log.error("gauntlet: %s", exc)
            environment.process_exit_code = 2
            gevent.spawn(environment.runner.quit)

    def _config_and_target(self, host: str | None) -> tuple[LoadConfig, Target]:
        config = load_config(self.settings.config, self.settings.adapter, self.settings.state)
        return config, resolve_target(host, self.settings.state, config)

    def _start_master(self) -> None:
        config, target = self._config_and_target(self.environment.host)
        build_adapter(config, target, self.settings.allow_remote)  # refuse before any worker starts
        assert self.run_dir is not None and self.receiver is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        runner = self.environment.runner
        self.receiver.greet({
            "seed": self.seed, "subscribers": 0, "http_url": target.http_url, "ws_url": target.ws_url,
            "secret": target.secret, "publisher_key": target.publisher_key, "replicas": list(target.replicas),
        })
        log.info("gauntlet: %s, %d workers, records in %s", self.settings.scenario, len(self.receiver.expected),
                 self.run_dir / "records")
        self.greenlets.append(gevent.spawn(self._announce_pool, runner))

    def _announce_pool(self, runner: Any) -> None:
        last = -1
        while True:
            n = subscriber_count(runner.target_user_classes_count or {}, self.environment)
            if n != last:
                runner.send_message(POOL, {"subscribers": n})
                last = n
            gevent.sleep(2.0)

    def _start_load_process(self) -> None:
        env = self.environment
        runner = env.runner
        hello = self.hello
        if self.role == "worker":
            local = self.local or self.settings
            index = max(0, int(runner.worker_index))
            if hello is not None:
                self.seed = hello.seed
                self.cycle = hello.cycle
                target = Target(hello.http_url, hello.ws_url, hello.secret, hello.publisher_key,
                                tuple(hello.replicas), source="master")
                config = load_config(local.config, self.settings.adapter, local.state)
                shared = local.ship_records != "always" and shares_master_dir(hello)
                run_dir = Path(hello.run_dir) if shared else self._local_run_dir(local)
                workers = hello.workers
                allow_remote = local.allow_remote  # the worker's own flag, never the master's
            else:
                config = load_config(local.config, self.settings.adapter, local.state)
                target = resolve_target(env.host, local.state, config)
                shared, workers, allow_remote = False, 1, local.allow_remote
                run_dir = self._local_run_dir(local)
            self.shipping = not shared
        else:
            index, workers = 0, 1
            config, target = self._config_and_target(env.host)
            run_dir = self.run_dir  # chosen once in _on_init, so a second test in the web UI keeps it
            allow_remote = self.settings.allow_remote
        adapter = build_adapter(config, target, allow_remote)
        worker = f"w{index}"
        records = run_dir / "records" / worker
        if self.recorder is None or self.recorder.directory != records:
            if self.recorder is not None:
                self.recorder.close()
            self.recorder = Recorder(records, worker, batch=self.settings.flush_every)
            atexit.register(self.recorder.close)
            if self.recorder.appending:
                log.warning("gauntlet: %s already holds records; appending to them (use a new --run-dir "
                            "to keep runs apart)", records)
        self.recorder.write_meta({
            "scenario": self.settings.scenario, "adapter": config.adapter, "config": config.source,
            "seed": self.seed, "hostile": self.settings.hostile, "hostile_kinds": hostile_kinds(adapter, target),
            "pid": os.getpid(), "host": socket.gethostname(), "target": target.http_url,
            "workers": workers, "started": time.time(), "shipped": self.shipping,
        })
        self.recorder.start()
        previous = self.proc
        self.proc = LoadProcess(environment=env, settings=self.settings, target=target, adapter=adapter,
                                recorder=self.recorder, worker=worker, worker_index=index, workers=workers,
                                seed=self.seed, global_subscribers=hello.subscribers if hello else 0)
        if previous is not None and previous.worker == worker:
            # A new test in the same process (web UI): keys and identities continue, so
            # nothing recorded in this run directory is ever named twice.
            self.proc.continue_from(previous)
        set_current(self.proc)
        self.greenlets.append(gevent.spawn(self._sample_users, self.proc))
        self.greenlets.append(gevent.spawn(probe_loop, self.proc.recorder.loadgen))
        if self.settings.storm_at:
            self.greenlets.append(gevent.spawn(run_storms, self.proc, time.time()))
        if self.role == "local":
            log.info("gauntlet: %s against %s (%s adapter from %s, seed %d), records in %s",
                     self.settings.scenario, target.http_url, config.adapter, config.source, self.seed, records)

    def _local_run_dir(self, local: LoadSettings) -> Path:
        """A worker's own run directory (records it ships), fixed for the process's life."""
        if self.run_dir is None:
            self.run_dir = resolve_run_dir(local.run_dir, local.scenario)
        return self.run_dir

    def _sample_users(self, proc: LoadProcess) -> None:
        runner = self.environment.runner
        while True:
            proc.recorder.users((time.time(), runner.user_count, proc.sockets))
            gevent.sleep(SAMPLE_EVERY)

    def on_test_stop(self, environment: Any, **_: Any) -> None:
        for g in self.greenlets:
            g.kill(block=False)
        self.greenlets.clear()
        if self.role == "master":
            if self.receiver is not None and self.receiver.expected:
                self.receiver.wait_all()
            return
        if self.recorder is not None:
            self.recorder.flush()
        if self.role == "worker":
            self._report_records()

    def _report_records(self) -> None:
        runner = self.environment.runner
        if self.recorder is not None and self.shipping:
            sizes = ship_records(runner, self.recorder.directory, self.cycle)
            log.info("gauntlet: shipped %d record files to the master", len(sizes))
        else:
            report_shared(runner, self.cycle)

    def on_quitting(self, environment: Any, **_: Any) -> None:
        runner = environment.runner
        if self.role != "master" and runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING):
            # Stop users now, while the recorder is open: in-flight publishes get their outcome.
            runner.stop()
        if self.recorder is not None:
            self.recorder.close()

    # -- HTTP records (Locust's measurement hook) ----------------------------------------

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int = 0,
                   exception: BaseException | None = None, response: Any = None, start_time: float | None = None,
                   **_: Any) -> None:
        if request_type not in HTTP_METHODS:
            return
        proc = self.proc
        if proc is None or proc.recorder.closed:
            return
        status = getattr(response, "status_code", None) or None
        headers = getattr(response, "headers", None) if status else None
        instance = None
        if headers is not None:
            try:
                # The app's own name for itself wins; else the load balancer's header.
                instance = headers.get("X-Instance") or replica_from(headers) or None
            except Exception:
                instance = None
        ts = start_time if start_time is not None else time.time() - response_time / 1000
        proc.recorder.http((ts, name, request_type, status, round(response_time, 3), 0 if exception else 1,
                            instance, str(exception)[:200] if exception else None))

    # -- worker messages ----------------------------------------------------------------

    def on_hello(self, environment: Any, msg: Any) -> None:
        try:
            self.hello = Hello.from_msg(msg.data)
        except (KeyError, TypeError) as exc:
            log.error("gauntlet: bad hello from the master (version mismatch?): %s", exc)
            return
        log.info("gauntlet: the master accepted this worker (run %s, cycle %d)", self.hello.run_dir, self.hello.cycle)

    def on_ship(self, environment: Any, msg: Any) -> None:
        runner = environment.runner
        if runner.state in (STATE_RUNNING, STATE_SPAWNING):
            runner.stop()  # fires test_stop, which ships
        else:
            self._report_records()

    def on_pool(self, environment: Any, msg: Any) -> None:
        if self.proc is not None:
            self.proc.global_subscribers = int(msg.data.get("subscribers", 0))


_plugin: Plugin | None = None


def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    global _plugin
    options = environment.parsed_options
    if options is None:
        return  # used as a library (tests build their own Environment)
    runner = runner or environment.runner
    role = "master" if isinstance(runner, MasterRunner) else "worker" if isinstance(runner, WorkerRunner) else "local"
    forked_child = role == "worker" and bool(getattr(options, "processes", None))
    try:
        settings = from_options(options)
        if role != "worker":
            config = load_config(settings.config, settings.adapter, settings.state)
            target = resolve_target(options.host, settings.state, config)
            build_adapter(config, target, settings.allow_remote)
            if not environment.host:
                environment.host = target.http_url
    except USER_MISTAKES as exc:
        fatal(str(exc), quiet=forked_child)
        return
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    plugin = Plugin(environment=environment, settings=settings, role=role, seed=seed, local=settings)
    if role != "worker":
        apply_user_settings(environment, settings)
        plugin.run_dir = resolve_run_dir(settings.run_dir, settings.scenario, target.stack_run_dir)
        log.info("gauntlet: seed %d (repeat with --seed %d); run dir %s", seed, seed, plugin.run_dir)
    warn_open_listeners(options, role)
    if role == "master":
        plugin.receiver = RecordsReceiver(runner, plugin.run_dir, settings.ship_timeout, worker_token(settings.state))
    if role == "worker":
        token = worker_token(settings.state)
        runner.register_message(CHALLENGE, lambda environment, msg: answer_challenge(runner, token, msg.data))
        ask_for_challenge(runner)
        runner.register_message(HELLO, plugin.on_hello)
        runner.register_message(SHIP, plugin.on_ship, concurrent=True)
        runner.register_message(POOL, plugin.on_pool)
    # Locust installs its SIGTERM handler only after a headless shape run is over, so
    # until then SIGTERM would kill the process with records unwritten and publishes
    # without an outcome. Stopping the runner takes the same path as Ctrl-C.
    gevent.signal_handler(signal.SIGTERM, _stop_on_sigterm, environment)
    events = environment.events
    events.test_start.add_listener(plugin.on_test_start)
    events.test_stop.add_listener(plugin.on_test_stop)
    events.quitting.add_listener(plugin.on_quitting)
    if role != "master":
        events.request.add_listener(plugin.on_request)
    _plugin = plugin


def warn_open_listeners(options: Any, role: str) -> None:
    """Loopback is the default (settings.py); another address was asked for explicitly,
    and gets said out loud: anyone who reaches it can drive the load (web UI) or join
    the run as a worker (master)."""
    checks = []
    if role != "worker" and not getattr(options, "headless", True) and not getattr(options, "worker", False):
        checks.append(("web UI", getattr(options, "web_host", "127.0.0.1"), getattr(options, "web_port", "")))
    if role == "master":
        checks.append(("master", getattr(options, "master_bind_host", "127.0.0.1"),
                       getattr(options, "master_bind_port", "")))
    for what, host, port in checks:
        host = str(host or "")
        if host in ("", "*") or not is_loopback_host(host):
            log.warning("gauntlet: the Locust %s listens on %s:%s, not only on this machine: anyone who reaches it "
                        "can %s", what, host or "*", port,
                        "start and stop load against the stack" if what == "web UI"
                        else "connect as a worker (workers must still prove the stack's token)")


def _stop_on_sigterm(environment: Any) -> None:
    runner = environment.runner
    if runner is not None and runner.state not in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP):
        log.info("gauntlet: SIGTERM: stopping users, writing records")
        runner.quit()


_installed = False


def _register_arguments(parser) -> None:
    """The `events.init_command_line_parser` listener: defaults from the scenario, then
    the [load] table of the project config (found from the command line Locust is about
    to parse)."""
    register_arguments(parser, config_defaults())


def install(defaults: ScenarioDefaults) -> None:
    """Called by each locustfile at import: its defaults, then our listeners (once)."""
    global _installed
    set_scenario(defaults)
    if _installed:
        return
    _installed = True
    install_locust_fixes()
    raise_open_files()
    events.init_command_line_parser.add_listener(_register_arguments)
    events.init.add_listener(_on_init)


__all__ = ["install", "apply_user_settings", "Plugin"]
