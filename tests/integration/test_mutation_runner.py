"""The mutation runner end to end on real copies of the project: a baseline, one
mutant the judging tests catch and one they cannot (a comment), the table and the
score. The judging tests are the SUT's fast unit tests, so this takes seconds."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.mutation.runner import DEFAULT_MUTANTS, ROOT

pytestmark = pytest.mark.integration

HARMLESS = """Kind: none
Bug: a comment changes; every test must still pass (the runner must call this missed)

diff --git a/sut/auth.py b/sut/auth.py
--- a/sut/auth.py
+++ b/sut/auth.py
@@ -1,4 +1,4 @@
-\"\"\"User tokens and the publisher key.
+\"\"\"User tokens and the publisher key (a comment only).
 
 A user token is `<user>.<hex HMAC-SHA256(secret, user)>`: stateless, so every replica
 can verify a token issued for any other replica without shared session state.
"""


SYNTAX_ERROR = """Kind: broken
Bug: the module no longer parses

diff --git a/sut/auth.py b/sut/auth.py
--- a/sut/auth.py
+++ b/sut/auth.py
@@ -59,3 +59,4 @@ def _bytes(text: str) -> bytes:
 
 def _mac(secret: str, user: str) -> str:
     return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
+)(
"""


def _mutation(out: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.mutation", "--workers", "0", "--out", str(out),
                           "--tests", "tests/unit/test_sut_core.py", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_caught_and_missed_mutants_get_their_rows_and_score(tmp_path):
    shutil.copy(DEFAULT_MUTANTS / "06-token-prefix-accepted.patch", tmp_path)
    (tmp_path / "50-comment-only.patch").write_text(HARMLESS)
    # Two workers: with -x, xdist ends a caught run as "interrupted" (exit 2), not 1.
    done = _mutation(tmp_path / "runs", "--mutants", str(tmp_path), "--workers", "2")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "baseline: passed" in out
    assert "caught by tests/unit/test_sut_core.py::test_forged_or_malformed_tokens_are_refused" in out, out
    assert "50-comment-only (none) ...\n    MISSED: all" in out, out
    assert "mutation score: 1 of 2 mutants caught (50 %); the unpatched SUT passed all" in out, out
    results = Path(out.rsplit("results: ", 1)[1].strip())
    doc = json.loads(results.read_text())
    again = subprocess.run([sys.executable, "-m", "harness.mutation", "--rejudge", str(results.parent)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "mutation score: 1 of 2 mutants caught (50 %)" in again.stdout, again.stdout
    assert doc["baseline"]["passed"] and doc["baseline"]["tests"] > 10
    assert [(m["mutant"], m["result"]) for m in doc["mutants"]] == [("06-token-prefix-accepted", "caught"),
                                                                    ("50-comment-only", "missed")]
    # The same run with a bar it does not reach: exit 1, so CI can gate on the score.
    strict = _mutation(tmp_path / "runs", "--mutants", str(tmp_path), "--only", "50-", "--min-score", "90")
    assert strict.returncode == 1 and "mutation score: 0 of 1 mutants caught (0 %)" in strict.stdout, strict.stdout


def test_a_mutant_that_breaks_the_test_run_itself_is_not_judged(tmp_path):
    """A patch that stops pytest from collecting (a syntax error) is not a catch."""
    (tmp_path / "51-syntax-error.patch").write_text(SYNTAX_ERROR)
    done = _mutation(tmp_path / "runs", "--mutants", str(tmp_path), "--skip-baseline")
    assert "not judged: tests.unit.test_sut_core did not import" in done.stdout, done.stdout + done.stderr
    assert "mutation score: 0 of 0 mutants caught; 1 not judged (unverified: baseline skipped)" in done.stdout
    assert done.returncode == 1
