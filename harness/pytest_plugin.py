"""gauntlet's pytest plugin: chaos tests for your own stack in a few lines.

Registered through the `pytest11` entry point, so installing gauntlet is enough.

    import pytest

    @pytest.mark.chaos
    @pytest.mark.gauntlet(replicas=3, broker="redis")
    def test_replica_kill_loses_nothing(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
        gauntlet_load.start("ramp", stages="5s:40,30s:40")
        gauntlet_load.sleep_until(10)
        gauntlet_nemesis.fault("kill", "r2", hold=8)
        verdict = gauntlet_verdict()
        verdict.assert_passed("delivery", "faults")

Fixtures (all function-scoped; each test gets one run directory under `runs/` that
keeps the stack's logs, the load records, the fault journal and report.html):

- `gauntlet_spec`: the StackSpec, from `@pytest.mark.gauntlet(**fields)` and, for
  parametrized tests, `gauntlet_spec` params (dicts) via `indirect=True`.
- `gauntlet_stack`: a running LocalStack (torn down after the test, even on failure).
- `gauntlet_load`: a Locust scenario in the background against the stack, bounded.
- `gauntlet_nemesis`: inject / heal faults; everything is healed at teardown.
- `gauntlet_verdict`: stop the load, evaluate the run (the reports' checks and
  targets) and write report.html; returns a `RunVerdict` with `assert_passed`.

A failing test's report shows the verdict table and the report's path.
Options: `--gauntlet-runs-dir DIR`, `--gauntlet-defects LIST` (switch on reference
SUT defects in every stack: negative controls; also $GAUNTLET_DEFECTS),
`--gauntlet-broker NAME` (force a broker, e.g. `memory`; also $GAUNTLET_BROKER),
`--gauntlet-config FILE` (the project config: app, [load], [slo]; also $GAUNTLET_CONFIG;
default the rootdir's gauntlet.toml or pyproject [tool.gauntlet]). A test can name its
own with `@pytest.mark.gauntlet(config="path/to/gauntlet.toml")`; the stack, the load
generator and the verdict's targets all read that file.

`verdict.assert_passed()` with no names asks for the run's verdict to be pass: an
unknown verdict (a run that checked nothing, e.g. no publishes) fails it, as exit code
3 fails `gauntlet run` in CI.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from harness.spec import StackSpec

VERDICT_KEY = pytest.StashKey[list]()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gauntlet", "gauntlet chaos testing")
    group.addoption("--gauntlet-runs-dir", default=None, metavar="DIR",
                    help="where each test's run directory goes (default: <rootdir>/runs)")
    group.addoption("--gauntlet-defects", default=None, metavar="LIST",
                    help="reference SUT defects to switch on in every stack (negative controls); "
                         "default $GAUNTLET_DEFECTS")
    group.addoption("--gauntlet-broker", default=None, metavar="NAME",
                    help="force this broker in every stack, e.g. memory (the negative control); "
                         "default $GAUNTLET_BROKER")
    group.addoption("--gauntlet-config", default=None, metavar="FILE",
                    help="project config (app, [load], [slo]) for every stack; default $GAUNTLET_CONFIG, "
                         "else the rootdir's gauntlet.toml / pyproject [tool.gauntlet]")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "chaos: chaos tests under load against a real stack (pytest -m chaos)")
    config.addinivalue_line("markers", "slow: tests that take more than a few seconds")
    config.addinivalue_line("markers", "gauntlet(**spec): the stack for this test, e.g. gauntlet(replicas=3, broker='redis')")


def _runs_dir(config) -> Path:
    option = config.getoption("--gauntlet-runs-dir")
    return Path(option) if option else Path(config.rootpath) / "runs"


def _defects(config) -> str:
    option = config.getoption("--gauntlet-defects")
    return option if option is not None else os.environ.get("GAUNTLET_DEFECTS", "")


@pytest.fixture
def gauntlet_spec(request) -> StackSpec:
    from harness.config import load_project_config

    fields: dict = {}
    for marker in reversed(list(request.node.iter_markers("gauntlet"))):
        fields.update(marker.kwargs)
    if isinstance(getattr(request, "param", None), dict):
        fields.update(request.param)
    # The app under test comes from the project config, as for `gauntlet up --config`.
    explicit = fields.pop("config", None) or request.config.getoption("--gauntlet-config") \
        or os.environ.get("GAUNTLET_CONFIG") or None
    if explicit is not None and not Path(explicit).is_absolute():
        explicit = Path(request.config.rootpath) / explicit
    config = load_project_config(explicit, cwd=Path(request.config.rootpath))
    if explicit is not None or "app" not in fields:  # an explicit app= has no config file behind it
        fields.setdefault("app", config.app)
        fields.setdefault("config_path", config.path)
    broker = request.config.getoption("--gauntlet-broker") or os.environ.get("GAUNTLET_BROKER")
    if broker:
        fields["broker"] = broker
    spec = StackSpec(**{"name": request.node.name, **fields})
    defects = _defects(request.config)
    if defects:
        spec = replace(spec, replica_env={**spec.replica_env, "SUT_DEFECTS": defects})
    spec.runs_dir = _runs_dir(request.config)
    spec.validate()
    return spec


@pytest.fixture
def gauntlet_stack(gauntlet_spec):
    from harness.rundir import new_run_dir, update_run_meta
    from harness.backends import make_stack, preflight
    from harness.versions import collect_versions

    run_dir = new_run_dir(gauntlet_spec.runs_dir, gauntlet_spec.name)
    spec = replace(gauntlet_spec, run_dir=run_dir)
    update_run_meta(run_dir, name=run_dir.name, test=gauntlet_spec.name, versions=collect_versions(),
                    created=time.time(), slo=_config_slo(gauntlet_spec))
    preflight(spec)
    stack = make_stack(spec)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        update_run_meta(run_dir, ended=time.time())


def _config_slo(spec: StackSpec) -> list[str]:
    """The project config's [slo] targets: the verdict applies them as run.json targets."""
    from harness.config import load_project_config

    return list(load_project_config(spec.config_path).slo) if spec.config_path else []


class LoadRun:
    """A scenario running in the background against the test's stack."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.process = None
        self.started = 0.0
        self.planned = 0.0

    def start(self, scenario: str = "ramp", *, stages: str | None = None, users: int | None = None,
              duration: float | str | None = None, seed: int | None = None, processes: int = 1,
              args: Sequence[str] = ()) -> "LoadRun":
        """Start Locust headless. `users` + `duration` hold a flat load; `stages` is k6-style."""
        from harness.loadgen import LoadPlan, LoadProcess
        from harness.rundir import update_run_meta
        from harness.runner import load_shape
        from scenarios.catalogue import resolve_scenario
        from common.units import parse_duration

        if self.process is not None:
            raise RuntimeError("gauntlet_load runs one scenario per test")
        path = resolve_scenario(scenario)
        # Test-sized defaults: a flat load holds 30 s after a ramp of at most 5 s.
        shape = load_shape(path, stages, users, parse_duration(duration) if duration is not None else None,
                           hold=30.0, ramp=5.0)
        stages = shape.stages
        self.planned = shape.duration
        seed = seed if seed is not None else random.randrange(1, 2**31)
        run_dir = self.stack.run_dir
        plan = LoadPlan(scenario=path, host=self.stack.nginx.url, run_dir=run_dir,
                        state_file=run_dir / "state.json", seed=seed, stages=stages, cut=shape.cut,
                        processes=processes, extra=list(args), config=self.stack.spec.config_path)
        update_run_meta(run_dir, scenario=str(path), stages=stages, seed=seed, planned_duration_s=self.planned,
                        locust_argv=plan.argv()[1:])
        self.process = LoadProcess(plan)
        self.started = self.process.start()
        self.stack.track_load(self.process.child)  # the reaper stops the load first if pytest dies
        if processes == 1:
            self.started = self._load_clock(run_dir, self.started)
        update_run_meta(run_dir, started=self.started)  # the report's clock starts with the load
        return self

    def _load_clock(self, run_dir, spawned: float, deadline_s: float = 30.0) -> float:
        """When the load's own clock started: its first users.csv sample, taken as its
        stages begin. Locust can take seconds to start on a busy machine, and a test's
        `sleep_until(6)` means six seconds into the load, not into the process. Falls
        back to the spawn time if no sample shows up within the deadline."""
        path = run_dir / "records" / "w0" / "users.csv"
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and self.process.running():
            try:
                lines = path.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 2:
                try:
                    return float(lines[1].split(",", 1)[0])
                except ValueError:
                    break
            time.sleep(0.1)
        return spawned

    def elapsed(self) -> float:
        return time.time() - self.started if self.started else 0.0

    def sleep_until(self, offset: float) -> None:
        """Sleep until `offset` seconds after the load started (fails fast if Locust died)."""
        self._require()
        while self.elapsed() < offset:
            if not self.process.running():
                self.process.check()
                raise AssertionError("the load generator stopped before the planned time")
            time.sleep(min(0.2, offset - self.elapsed()))

    def wait(self, margin: float = 90.0) -> None:
        """Wait for the stages to end, Locust to drain and write its records (bounded)."""
        self._require()
        left = self.planned - self.elapsed() + margin
        if self.process.wait(left) is None:
            self.process.stop()
        self.process.check()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def _require(self) -> None:
        if self.process is None:
            raise RuntimeError("call gauntlet_load.start(...) first")


@pytest.fixture
def gauntlet_load(gauntlet_stack) -> Iterator[LoadRun]:
    load = LoadRun(gauntlet_stack)
    try:
        yield load
    finally:
        load.stop()


class Nemesis:
    """Faults on the test's stack, each journalled; `heal_all` runs at teardown whatever happened."""

    def __init__(self, stack) -> None:
        from chaos.injector import Injector
        from chaos.journal import Journal
        from chaos.target import LocalHandle

        self.handle = LocalHandle(stack)
        self.injector = Injector(self.handle, Journal.in_run_dir(stack.run_dir))
        self._players: list = []

    def inject(self, kind: str, target: str, hold: float | None = None, **params):
        """Inject a fault (raises if the inject failed, after healing it)."""
        from chaos.faults import fault_class

        fault = fault_class(kind).build(target, params, self.handle.topology())
        injection = self.injector.inject(fault, hold)
        if injection.inject_error:
            self.injector.heal(injection)
            raise AssertionError(f"inject {kind} {target} failed: {injection.inject_error}")
        return injection

    def heal(self, injection=None) -> None:
        """Heal one injection, or (none given) everything: playing timelines stop too."""
        if injection is None:
            self.quiesce()
        else:
            self.injector.heal(injection)

    def quiesce(self) -> None:
        """Stop every timeline (which heals what it injected) and heal every fault injected here.

        Each player has an injector of its own, so `injector.heal_all` alone would
        leave a timeline injecting while the run is checked."""
        for player in self._players:
            player.stop()
        self.injector.heal_all()

    def fault(self, kind: str, target: str, hold: float | str, **params) -> None:
        """Inject, hold for `hold`, heal (also when interrupted)."""
        from common.units import parse_duration

        seconds = parse_duration(hold)
        with self.active(kind, target, hold=seconds, **params):
            time.sleep(seconds)

    @contextlib.contextmanager
    def active(self, kind: str, target: str, hold: float | None = None, **params):
        injection = self.inject(kind, target, hold, **params)
        try:
            yield injection
        finally:
            self.injector.heal(injection)

    def play(self, timeline_path: str, at: float | None = None):
        """Play a timeline file from `at` (epoch seconds; default now); healed at teardown."""
        from chaos.player import TimelinePlayer
        from chaos.timeline import load_timeline

        player = TimelinePlayer(load_timeline(timeline_path), self.handle, journal=self.injector.journal)
        player.start(at=at)
        self._players.append(player)
        return player

    def close(self) -> None:
        from chaos.heal import heal_everything

        self.quiesce()
        heal_everything(self.handle, self.injector.journal)


@pytest.fixture
def gauntlet_nemesis(gauntlet_stack) -> Iterator[Nemesis]:
    nemesis = Nemesis(gauntlet_stack)
    try:
        yield nemesis
    finally:
        nemesis.close()


class CheckedRun:
    """A run's verdict with assertion helpers that explain themselves."""

    def __init__(self, verdict, report: Path) -> None:
        self.verdict = verdict
        self.report = report
        self.run_dir = verdict.run_dir

    def check(self, name: str):
        for result in self.verdict.checks:
            if result.name == name:
                return result
        raise KeyError(f"no check {name!r}; checks: {', '.join(c.name for c in self.verdict.checks)}")

    def table(self) -> str:
        import io

        from reports.cli import print_verdicts

        out = io.StringIO()
        print_verdicts(self.verdict, out)
        return out.getvalue() + f"report: {self.report}\n"

    @property
    def exit_code(self) -> int:
        """What `gauntlet run` would exit with: 0 pass, 1 fail, 3 unknown."""
        return self.verdict.exit_code

    def assert_passed(self, *names: str) -> None:
        """Every named check passed; with no names, the run's verdict is pass (every
        check passed, and there was at least one: unknown is not a pass)."""
        from reports.check import Verdict

        checks = [self.check(n) for n in names] if names else self.verdict.checks
        bad = [c for c in checks if c.verdict != Verdict.PASS]
        assert not bad, ("checks did not pass: " + ", ".join(f"{c.name} {c.verdict.value}: {c.summary}" for c in bad)
                         + "\n" + self.table())
        assert names or self.verdict.verdict is Verdict.PASS, \
            f"the run's verdict is {self.verdict.verdict.value}, not pass\n" + self.table()

    def assert_failed(self, *names: str) -> None:
        from reports.check import Verdict

        checks = [self.check(n) for n in names]
        good = [c for c in checks if c.verdict != Verdict.FAIL]
        assert not good, "checks expected to fail did not: " + ", ".join(c.name for c in good) + "\n" + self.table()

    def data(self):
        from reports.records import load_run

        return load_run(self.run_dir)


def _finish(item) -> list[CheckedRun]:
    """Check and report a run whose test never asked for a verdict (it failed first)."""
    from reports.html import report_run

    done = item.stash.get(VERDICT_KEY, [])
    load, nemesis, stack = (item.funcargs.get(name) for name in
                            ("gauntlet_load", "gauntlet_nemesis", "gauntlet_stack"))
    if done or load is None or load.process is None:
        return done
    load.stop()
    if nemesis is not None:
        nemesis.quiesce()
    verdict, path = report_run(stack.run_dir)
    item.stash[VERDICT_KEY] = [CheckedRun(verdict, path)]
    return item.stash[VERDICT_KEY]


@pytest.fixture
def gauntlet_verdict(request, gauntlet_stack, gauntlet_load, gauntlet_nemesis):
    """Finish the load, heal, then check the run and write its report.

    If the test fails before asking for the verdict, the run is checked and reported
    anyway, so every test that ran load leaves a report and shows its verdict table.
    """
    from reports.html import report_run

    def evaluate(slo: Sequence[str] = (), use_default_slo: bool = True) -> CheckedRun:
        if gauntlet_load.process is not None:
            gauntlet_load.wait()
        gauntlet_nemesis.quiesce()
        verdict, path = report_run(gauntlet_stack.run_dir, list(slo), use_default_slo=use_default_slo)
        checked = CheckedRun(verdict, path)
        request.node.stash.setdefault(VERDICT_KEY, []).append(checked)
        return checked

    yield evaluate
    _finish(request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "gauntlet_verdict" in item.fixturenames:
        try:
            checked_runs = _finish(item)
        except Exception as exc:  # the report is a courtesy; never hide the test's own failure
            report.sections.append(("gauntlet verdict", f"could not check the run: {exc}"))
        else:
            for checked in checked_runs:
                report.sections.append(("gauntlet verdict", checked.table()))
    return report
