"""SIGKILL of `gauntlet run` in any phase leaves nothing running, and a run directory
that `gauntlet report` judges fairly: the load generator is stopped before the stack
(no connection-refused rows blamed on the app), and a fault still active is closed in
the journal as interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from reports.records import load_run
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMELINE = """
[[fault]]
kind = "partition"
target = "r2"
dependency = "broker"
at = "3s"
for = "60s"
"""


class Run:
    """`gauntlet run` in its own session, stdout read line by line into a list."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", "ramp", "--replicas", "2", "--quiet", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.known: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        self.watch()
        return any(text in line for line in self.lines)

    def watch(self) -> None:
        """Remember every descendant ever seen (the reaper included: it must go too)."""
        try:
            self.known |= {c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def kill(self) -> None:
        self.watch()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def alive(self) -> list[str]:
        out = []
        for pid in self.known:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    out.append(" ".join(p.cmdline())[:100])
            except psutil.NoSuchProcess:
                pass
        return out

    def cleanup(self) -> None:
        for pid in self.known | {self.proc.pid}:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._reader.join(5)


def run_dir(cwd: Path) -> Path:
    dirs = [d for d in (cwd / "runs").iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def report(directory: Path, cwd: Path) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(directory)], cwd=cwd,
                          capture_output=True, text=True, timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    summary = directory / "summary.json"
    return done.returncode, json.loads(summary.read_text()) if summary.exists() else {}


def checks(summary: dict) -> dict[str, str]:
    return {c["name"]: c["verdict"] for c in summary.get("checks", [])}


@pytest.mark.parametrize("phase,marker", [
    ("bring-up", "run "),  # the run directory exists, the stack is coming up
    ("load", "] inject partition"),  # load running, a partition active
    ("report", "checking and writing the report"),
])
def test_sigkill_in_any_phase_leaves_nothing_running_and_a_fair_run_dir(tmp_path, phase, marker):
    (tmp_path / "t.toml").write_text(TIMELINE)
    stages = "1s:8,60s:8" if phase != "report" else "1s:6,4s:6"
    chaos = ["--chaos", str(tmp_path / "t.toml")] if phase != "report" else []
    run = Run(tmp_path, "--stages", stages, *chaos)
    try:
        wait_for(lambda: run.saw(marker), 120, f"the {phase} phase")
        if phase == "bring-up":
            wait_for(lambda: any("postgres" in " ".join(p.cmdline()) for p in
                                 psutil.Process(run.proc.pid).children(recursive=True)), 30, "postgres to start")
        if phase == "load":
            time.sleep(2)  # the partition holds; records pile up on both sides of it
        run.kill()
        wait_for(lambda: not run.alive(), 60, "every child of the killed run to be gone")
    finally:
        run.cleanup()
    directory = run_dir(tmp_path)
    meta = json.loads((directory / "run.json").read_text())
    if phase == "report":
        return  # the stack was down already; the records are complete (see the Ctrl-C test)
    assert meta.get("interrupted") is True and meta.get("harness_died"), meta
    if phase == "bring-up":
        return
    journal = [json.loads(line) for line in (directory / "faults.jsonl").read_text().splitlines()]
    last = {r["id"]: r for r in journal}
    assert [r["outcome"] for r in last.values()] == ["interrupted"], last
    code, summary = report(directory, tmp_path)
    verdicts = checks(summary)
    assert verdicts.get("faults") == "unknown" and verdicts.get("delivery") != "fail", verdicts
    # Stopped before the stack went down: no request failed because the stack was gone.
    http = load_run(directory).http
    late_errors = http[(http["ts"] > meta["harness_died"]) & ~http["ok"]]
    assert not len(late_errors), late_errors.head().to_string()
    assert code != 1, f"a killed run is not failed on what the kill caused: {verdicts}"


def test_ctrl_c_during_bring_up_is_interrupted_not_a_start_failure(tmp_path):
    run = Run(tmp_path, "--stages", "1s:4,30s:4")
    try:
        wait_for(lambda: run.saw("run ") and any(
            "initdb" in " ".join(p.cmdline()) or "postgres" in " ".join(p.cmdline())
            for p in psutil.Process(run.proc.pid).children(recursive=True)), 60, "postgres to be set up")
        run.watch()
        os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal sends to its foreground group
        code = run.proc.wait(60)
        run._reader.join(5)
    finally:
        run.cleanup()
    text = "\n".join(run.lines)
    assert code == 130, text
    assert "interrupted" in text and "initdb failed" not in text and "start failed" not in text, text
    wait_for(lambda: not run.alive(), 30, "nothing left running")


def test_ctrl_c_during_the_report_says_how_to_write_it(tmp_path):
    run = Run(tmp_path, "--stages", "1s:4,3s:4")
    try:
        wait_for(lambda: run.saw("checking and writing the report"), 120, "the report phase")
        os.killpg(run.proc.pid, signal.SIGINT)
        code = run.proc.wait(60)
        run._reader.join(5)
    finally:
        run.cleanup()
    text = "\n".join(run.lines)
    directory = run_dir(tmp_path)
    if "report: " in text:
        pytest.skip("the report was written before the interrupt arrived")
    assert code == 130, text
    assert f"gauntlet report {directory}" in text, text
    code, summary = report(directory, tmp_path)
    assert summary.get("checks"), "the records were complete: the report can be written afterwards"
