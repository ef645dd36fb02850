"""The resource sampler against real processes: a busy one shows about a core, an idle
one next to nothing, a tree counts its children, a split tree names each process, and
what no source names is not sampled. The files it writes are what load_run reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.resources import FixedProcesses, LoadProcesses, ResourceSampler, Watched
from reports.records import load_run

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
IDLE = "import time; time.sleep(30)"
TREE = ("import subprocess, sys, time\n"
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']) for _ in range(2)]\n"
        "time.sleep(30)\n")


@pytest.fixture
def spawn():
    procs: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            import os
            import signal
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def rows_of(run_dir, component: str):
    if not (run_dir / "run.json").exists():
        (run_dir / "run.json").write_text(json.dumps({"name": "t"}))
    res = load_run(run_dir).resources
    return res[(res["component"].astype(object) == component).to_numpy()]


def test_busy_idle_and_tree_processes_are_told_apart(tmp_path, spawn):
    busy, idle, tree = spawn(BUSY), spawn(IDLE), spawn(TREE)
    import psutil
    wait_for(lambda: len(psutil.Process(tree.pid).children()) == 2)
    sampler = ResourceSampler(tmp_path, [FixedProcesses([Watched("busy", "test", busy.pid, tree=False),
                                                         Watched("idle", "test", idle.pid, tree=False),
                                                         Watched("tree", "test", tree.pid)])], interval=0.5)
    used = psutil.Process(busy.pid).cpu_times
    sampler.start()
    before = sum(used()[:2])
    time.sleep(3.2)
    stats = sampler.stop()
    after = sum(used()[:2])
    assert stats.samples >= 6 and stats.errors == 0
    assert stats.cpu_s / stats.samples < 0.05, "a sample costs well under 50 ms of CPU"
    busy_rows, idle_rows, tree_rows = rows_of(tmp_path, "busy"), rows_of(tmp_path, "idle"), rows_of(tmp_path, "tree")
    assert len(busy_rows) >= 5, "one row per sample after the baseline"
    # The machine is shared, so how much of a core the spinning process gets varies;
    # what the rows add up to must be the CPU it used, and far more than a sleeper's.
    ts = busy_rows["ts"].to_numpy()
    # Each row covers the interval since the sample before (the first: since the baseline).
    reported = float((busy_rows["cpu"].to_numpy() * np.diff(ts, prepend=ts[0] - 0.5)).sum())
    consumed = after - before
    assert consumed > 0.2, "the spinner got some CPU"
    assert reported == pytest.approx(consumed, rel=0.15, abs=0.05)
    assert busy_rows["cpu_max"].max() <= 1.05, "one thread cannot use more than a core"
    assert idle_rows["cpu"].max() < 0.05 < busy_rows["cpu"].mean()
    assert set(tree_rows["processes"]) == {3.0}, "the tree's root and its two children"
    assert (tree_rows["rss_mb"] > idle_rows["rss_mb"].mean() * 2).all(), "three interpreters' memory"
    machine = rows_of(tmp_path, "machine")
    assert len(machine) == len(busy_rows) and (machine["cpu"] >= busy_rows["cpu"].to_numpy() - 0.1).all()
    assert set(load_run(tmp_path).resources["component"].astype(str)) == {"busy", "idle", "tree", "machine", "other"}


def test_a_split_tree_names_each_load_process_from_its_records(tmp_path, spawn):
    tree = spawn(TREE)
    import psutil
    wait_for(lambda: len(psutil.Process(tree.pid).children()) == 2)
    kids = sorted(c.pid for c in psutil.Process(tree.pid).children())
    for i, pid in enumerate(kids):
        (tmp_path / "records" / f"w{i}").mkdir(parents=True)
        (tmp_path / "records" / f"w{i}" / "meta.json").write_text(json.dumps({"worker": f"w{i}", "pid": pid}))
    sampler = ResourceSampler(tmp_path, [LoadProcesses(tree.pid, tmp_path / "records", forks=True)], interval=0.3)
    sampler.start()
    time.sleep(0.8)
    sampler.stop()
    res = load_run(tmp_path).resources
    load = res[(res["kind"].astype(object) == "load").to_numpy()]
    assert set(load["component"].astype(str)) == {"load-master", "load-w0", "load-w1"}
    assert set(load["processes"]) == {1.0}, "each load process on its own: each is single-threaded"


def test_a_process_that_exits_drops_out_without_errors(tmp_path, spawn):
    short = spawn("import time; time.sleep(0.6)")
    sampler = ResourceSampler(tmp_path, [FixedProcesses([Watched("short", "test", short.pid)])], interval=0.25)
    sampler.start()
    short.wait(timeout=5)
    time.sleep(0.6)
    stats = sampler.stop()
    assert stats.errors == 0
    rows = rows_of(tmp_path, "short")
    last = rows["ts"].max()
    assert len(rows) >= 1 and last < time.time() - 0.2, "no rows once it is gone"
