"""Run the chaos tests against the unpatched SUT, then against each mutant.

Each run gets a fresh copy of the project (the files git tracks or would track, so
no virtualenv, no run directories) in a temporary folder; the mutant's patch is
applied there and pytest runs in that copy with the copy first on PYTHONPATH, so the
test process, the harness and every replica it starts import the mutated `sut/`.
The installed virtualenv is reused as it is: mutants change code, not dependencies.

pytest stops at the first failing test (`-x`; under xdist that ends as exit code 2,
"interrupted", so the verdict comes from the junit file, not the exit code): a
mutant is *caught* when a test failed or errored, *missed* when every selected test
passed, and *not judged* when the suite could not run (a test module that does not
import, pytest's usage or internal error, no test selected, the time limit). Only caught and missed count in the score. The baseline must pass, or
no score is given: a suite that fails the correct SUT catches everything and proves
nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from harness.mutation.catalogue import Mutant, apply

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MUTANTS = ROOT / "mutants"
# The chaos suite minus its negative controls: those switch on sut/defects.py to show
# that the checks can fail; they judge gauntlet, not the SUT a mutant changes.
DEFAULT_TESTS = ("-m", "chaos", "tests/chaos", "--ignore=tests/chaos/test_chaos_negative_controls.py")
CAUGHT, MISSED, NOT_JUDGED = "caught", "missed", "not judged"
# pytest's exit codes: 0 all passed, 1 some failed; anything else means the suite did not run as asked.
PYTEST_PASSED = 0
COLLECTION_FAILURE = "collection failure"  # pytest's junit message for a module that did not import


@dataclass(frozen=True)
class Failure:
    test: str      # node id, e.g. tests/chaos/test_chaos_replicas.py::test_x[redis]
    stage: str     # "failed" (the test body), "error" (setup or teardown) or "collect" (no import)
    figure: str    # the first line of the assertion message: what the test saw


@dataclass(frozen=True)
class SuiteResult:
    exit_code: int | None        # None: stopped at the time limit
    tests: int                   # test cases run
    failures: tuple[Failure, ...]
    seconds: float
    log: str                     # the pytest output file

    @property
    def passed(self) -> bool:
        return self.exit_code == PYTEST_PASSED and self.tests > 0


@dataclass(frozen=True)
class Outcome:
    mutant: str
    kind: str
    bug: str
    result: str                  # caught, missed or not judged
    caught_by: str | None = None
    figure: str | None = None
    reason: str | None = None    # why not judged
    tests: int = 0
    seconds: float = 0.0
    exit_code: int | None = None  # pytest's; None at the time limit


@dataclass
class Options:
    tests: tuple[str, ...] = DEFAULT_TESTS
    workers: int = 2                 # pytest-xdist workers per suite run (0: one process)
    limit_s: float = 1800.0          # per suite run
    python: str = sys.executable
    progress: Callable[[str], None] = print


def copy_project(source: Path, dest: Path) -> None:
    """The files git tracks or would track (untracked files not ignored included)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source,
                            capture_output=True, timeout=60)
    if listed.returncode != 0:  # not a git checkout: everything but the usual bulk
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__"))
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = source / name
        if not src.is_file():  # listed but deleted in the work tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def run_suite(tree: Path, label: str, opts: Options, log_dir: Path) -> SuiteResult:
    """pytest in `tree`, stopping at the first failure; bounded by opts.limit_s."""
    junit = log_dir / f"{label}.junit.xml"
    log = log_dir / f"{label}.log"
    argv = [opts.python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
            *(("-n", str(opts.workers), "--dist", "loadgroup") if opts.workers else ()), *opts.tests]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=opts.limit_s)
        except BaseException:  # the time limit, or Ctrl-C: the suite's whole group goes
            _stop_group(proc)
            code = None
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
    tests, failures = read_junit(junit)
    return SuiteResult(code, tests, failures, time.monotonic() - started, str(log))


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGINT first, so pytest's fixtures bring their stacks down; then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def read_junit(path: Path) -> tuple[int, tuple[Failure, ...]]:
    """Test count and failures from pytest's junit file (absent: nothing ran)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, ()
    tests, failures = 0, []
    for case in root.iter("testcase"):
        tests += 1
        for stage, tag in (("failed", "failure"), ("error", "error")):
            node = case.find(tag)
            if node is not None:
                message = (node.get("message") or node.text or "").strip()
                if stage == "error" and message == COLLECTION_FAILURE:
                    stage, message = "collect", (node.text or message).strip()
                failures.append(Failure(_node_id(case), stage, _first_line(message)))
    return tests, tuple(failures)


def _node_id(case: ET.Element) -> str:
    # `--dist loadgroup` appends "@<group>" to every node id; the test is the part before.
    name = str(case.get("name") or "").split("@", 1)[0]
    module = (case.get("classname") or "").replace(".", "/")
    return f"{module}.py::{name}" if module else name


def _first_line(message: str, width: int = 160) -> str:
    """The assertion's own words ("AssertionError: " dropped), on one line."""
    line = next((l.strip() for l in message.splitlines() if l.strip()), "")
    return " ".join(line.removeprefix("AssertionError: ").split())[:width]


def judge(mutant: Mutant, suite: SuiteResult) -> Outcome:
    base = dict(mutant=mutant.name, kind=mutant.kind, bug=mutant.bug, tests=suite.tests,
                seconds=round(suite.seconds, 1), exit_code=suite.exit_code)
    uncollected = [f for f in suite.failures if f.stage == "collect"]
    tested = [f for f in suite.failures if f.stage != "collect"]
    if uncollected:
        return Outcome(result=NOT_JUDGED, reason=f"{uncollected[0].test} did not import: {uncollected[0].figure}",
                       **base)
    if tested:
        first = tested[0]
        by = first.test + (" (in setup or teardown)" if first.stage == "error" else "")
        return Outcome(result=CAUGHT, caught_by=by, figure=first.figure, **base)
    if suite.exit_code == PYTEST_PASSED and suite.tests:
        return Outcome(result=MISSED, **base)
    why = ("stopped at the time limit" if suite.exit_code is None
           else f"pytest exited {suite.exit_code} after {suite.tests} tests; see {suite.log}")
    return Outcome(result=NOT_JUDGED, reason=why, **base)


def run_one(mutant: Mutant | None, opts: Options, log_dir: Path) -> SuiteResult:
    """A fresh copy, the patch (none for the baseline), the suite; the copy is removed."""
    label = mutant.name if mutant else "baseline"
    work = Path(tempfile.mkdtemp(prefix=f"gauntlet-mutant-{label}-"))
    tree = work / "project"
    try:
        copy_project(ROOT, tree)
        if mutant is not None:
            apply(mutant, tree)
        return run_suite(tree, label, opts, log_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rejudge(log_dir: Path, row: dict) -> SuiteResult:
    """A finished mutant's suite result again, from its junit file and log (after a
    change of the judging rules, or to print a table again without an hour of runs)."""
    name = row["mutant"]
    tests, failures = read_junit(log_dir / f"{name}.junit.xml")
    log = log_dir / f"{name}.log"
    code = row.get("exit_code", _exit_code_from_log(log))
    return SuiteResult(code, tests, failures, float(row.get("seconds", 0.0)), str(log))


def _exit_code_from_log(log: Path) -> int | None:
    """pytest's exit code as its last summary line tells it (0: only passes and skips)."""
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        return None
    return PYTEST_PASSED if " passed" in tail and not any(w in tail for w in ("failed", "error")) else 1


def score_line(outcomes: list[Outcome]) -> str:
    judged = [o for o in outcomes if o.result != NOT_JUDGED]
    caught = sum(o.result == CAUGHT for o in judged)
    share = f" ({100 * caught / len(judged):.0f} %)" if judged else ""
    tail = f"; {len(outcomes) - len(judged)} not judged" if len(judged) < len(outcomes) else ""
    return f"mutation score: {caught} of {len(judged)} mutants caught{share}{tail}"


def write_results(log_dir: Path, baseline: SuiteResult, outcomes: list[Outcome], opts: Options) -> Path:
    path = log_dir / "results.json"
    doc = {"tests": list(opts.tests), "workers": opts.workers,
           "baseline": {"passed": baseline.passed, "tests": baseline.tests, "seconds": round(baseline.seconds, 1),
                        "failures": [asdict(f) for f in baseline.failures]},
           "score": score_line(outcomes), "mutants": [asdict(o) for o in outcomes]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path
