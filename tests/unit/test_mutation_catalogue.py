"""The project's mutants stay usable: each parses, says what it is, changes only the
SUT, is no defect switch, and applies to this checkout (a patch gone stale fails here,
not an hour into `make mutation`)."""

import subprocess
import sys

import pytest

from harness.mutation.catalogue import MutantError, check_applies, load, parse
from harness.mutation.catalogue import Mutant
from harness.mutation.runner import (CAUGHT, DEFAULT_MUTANTS, MISSED, NOT_JUDGED, ROOT, Failure, SuiteResult,
                                     _first_line, judge, read_junit)

MUTANTS = load(DEFAULT_MUTANTS)


def test_the_project_keeps_at_least_twelve_mutants_of_distinct_kinds():
    assert len(MUTANTS) >= 12
    assert len({m.kind for m in MUTANTS}) >= 8, "a spread of bug kinds, not one kind twelve times"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_a_mutant_changes_only_the_sut_and_applies(mutant):
    assert mutant.files and all(f.startswith("sut/") for f in mutant.files), mutant.files
    assert "sut/defects.py" not in mutant.files
    added = [line for line in mutant.path.read_text().splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added or "-" in mutant.path.read_text(), "a patch that changes nothing"
    assert not any("defects." in line for line in added), "a mutant is a bug, not a sut/defects.py switch"
    assert check_applies(mutant, ROOT) is None


def test_a_patch_without_its_header_is_refused(tmp_path):
    bare = tmp_path / "bare.patch"
    bare.write_text(MUTANTS[0].path.read_text().split("\n\n", 1)[1])
    with pytest.raises(MutantError, match="header lacks Kind:, Bug:"):
        parse(bare)
    (tmp_path / "notes.patch").write_text("Kind: x\nBug: y\n")
    with pytest.raises(MutantError, match="not a patch"):
        parse(tmp_path / "notes.patch")


def test_a_mutant_that_does_not_apply_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    stale = MUTANTS[0].path.read_text().replace("PUBLISH_LOCK", "NO_SUCH_LINE_HERE", 1)
    (tmp_path / "99-stale.patch").write_text(stale)
    done = subprocess.run([sys.executable, "-m", "harness.mutation", "--mutants", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1 and "99-stale.patch: does not apply" in done.stderr
    missing = subprocess.run([sys.executable, "-m", "harness.mutation", "--mutants", str(tmp_path / "nope")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_junit_failures_name_the_test_and_what_it_saw(tmp_path):
    junit = tmp_path / "r.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="tests.chaos.test_chaos_replicas" name="test_kill[redis]">'
        '<failure message="AssertionError: checks did not pass: delivery fail: 3 lost&#10;assert [...]">x</failure>'
        '</testcase><testcase classname="tests.chaos.test_chaos_x" name="test_ok@tests/chaos/test_chaos_x.py"/>'
        '<testcase classname="tests.chaos.test_chaos_y" name="test_setup"><error message="StartError: r1 exited"/>'
        '</testcase><testcase classname="" name="tests.chaos.test_chaos_z">'
        '<error message="collection failure">SyntaxError: invalid syntax</error></testcase></testsuite></testsuites>')
    tests, failures = read_junit(junit)
    assert tests == 4
    assert [(f.test, f.stage, f.figure) for f in failures] == [
        ("tests/chaos/test_chaos_replicas.py::test_kill[redis]", "failed", "checks did not pass: delivery fail: 3 lost"),
        ("tests/chaos/test_chaos_y.py::test_setup", "error", "StartError: r1 exited"),
        ("tests.chaos.test_chaos_z", "collect", "SyntaxError: invalid syntax")]
    assert read_junit(tmp_path / "absent.xml") == (0, ())
    assert _first_line("\n\n  AssertionError:   two   spaces\nmore") == "two spaces"


def test_the_verdict_comes_from_the_tests_not_from_pytests_exit_code():
    """Under xdist, -x ends a caught run with exit code 2 ("interrupted"): still caught.
    A module that does not import is no catch, and neither is a run that ran nothing."""
    m = Mutant("x", DEFAULT_MUTANTS, "k", "b", ())
    failed = Failure("tests/a.py::t", "failed", "3 lost")
    assert judge(m, SuiteResult(2, 5, (failed,), 1.0, "")).result == CAUGHT
    assert judge(m, SuiteResult(0, 5, (), 1.0, "")).result == MISSED
    assert judge(m, SuiteResult(2, 0, (Failure("tests.a", "collect", "SyntaxError"),), 1.0, "")).result == NOT_JUDGED
    assert judge(m, SuiteResult(0, 0, (), 1.0, "")).result == NOT_JUDGED
    assert judge(m, SuiteResult(None, 3, (), 1.0, "")).reason == "stopped at the time limit"
