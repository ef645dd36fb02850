"""The raw-record writer: complete CSVs in the shared schema, batching, flush on stop,
and what survives a process killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gevent
import pytest

from reports.records import KINDS, read_records
from scenarios.recorder import Recorder, new_run_dir, resolve_run_dir

ROOT = Path(__file__).resolve().parents[2]


def recv_row(i: int) -> tuple:
    return (1000.0 + i / 1000, "w0-s1", "u1", 1, "r1", f"w0-{i}", i, "r2", 999.5 + i / 1000, 0)


def test_writes_every_kind_with_the_shared_header_and_readable_rows(tmp_path):
    rec = Recorder(tmp_path / "records" / "w0", "w0", batch=100, meta={"scenario": "ramp"})
    rec.http((1.5, "GET /api/items/{id}", "GET", 200, 3.25, 1, "r1", None))
    rec.http((1.6, "POST /api/notifications", "POST", None, 10000.0, 0, None, "ConnectionRefusedError: x, y"))
    rec.pub(("w0-1", "user", "u3", 1.0, 1.001, 1.01, "ok", 201, 7, "r2", None))
    rec.pub(("w0-2", "broadcast", None, 1.1, None, None, "fail", None, None, None, "overload"))
    for i in range(250):
        rec.recv(recv_row(i))
    rec.conn((2.0, "w0-s1", "u1", 1, "disconnect", "r1", 1006, 'closed, "abnormally"'))
    rec.users((3.0, 12, 10))
    rec.close()
    rec.close()  # idempotent
    directory = tmp_path / "records" / "w0"
    for kind, columns in KINDS.items():
        assert (directory / f"{kind}.csv").read_text().splitlines()[0] == ",".join(columns)
    http = read_records(directory / "http.csv", "http")
    assert http["status"].iloc[0] == 200 and http["status"].isna().iloc[1]
    assert http["error"].iloc[1] == "ConnectionRefusedError: x, y"
    pub = read_records(directory / "pub.csv", "pub")
    assert list(pub["outcome"]) == ["ok", "fail"] and pub["ts_sent"].isna().tolist() == [False, True]
    recv = read_records(directory / "recv.csv", "recv")
    assert len(recv) == 250 and list(recv["id"]) == list(range(250))
    assert recv["sent_ts"].iloc[10] == pytest.approx(999.51)
    conn = read_records(directory / "conn.csv", "conn")
    assert conn["detail"].iloc[0] == 'closed, "abnormally"'
    assert (directory / "meta.json").exists()


def test_batches_go_to_disk_at_the_batch_size_and_the_rest_each_second(tmp_path):
    rec = Recorder(tmp_path, "w0", batch=100)
    path = tmp_path / "recv.csv"
    for i in range(150):
        rec.recv(recv_row(i))
    assert len(path.read_text().splitlines()) == 1 + 100, "one full batch written, 50 waiting"
    assert len(rec.sinks["recv"].rows) == 50, "memory holds at most one batch per kind"
    rec.start()
    gevent.sleep(1.3)
    assert len(path.read_text().splitlines()) == 1 + 150, "the flusher wrote the rest within a second"
    rec.close()


def test_reopening_appends_without_a_second_header(tmp_path):
    for _ in range(2):
        rec = Recorder(tmp_path, "w0", batch=100)
        rec.recv(recv_row(1))
        rec.close()
    lines = (tmp_path / "recv.csv").read_text().splitlines()
    assert lines[0].startswith("ts,sub") and len(lines) == 3 and not lines[2].startswith("ts,")


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time, gevent
    sys.path.insert(0, {root!r})
    from scenarios.recorder import Recorder
    rec = Recorder(__import__("pathlib").Path(sys.argv[1]), "w0", batch=100)
    rec.start()
    for i in range(int(sys.argv[2])):
        rec.recv((1000.0 + i, "w0-s1", "u1", 1, "r1", f"w0-{{i}}", i, "r2", 999.0, 0))
    gevent.sleep(float(sys.argv[3]))
    for i in range(int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[4])):
        rec.recv((1000.0 + i, "w0-s1", "u1", 1, "r1", f"w0-{{i}}", i, "r2", 999.0, 0))
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("first, pause, second, expected", [
    (1050, 0.0, 0, 1000),   # killed mid-batch: the last 50 (one unfinished batch) are lost
    (30, 1.5, 10, 30),      # the per-second flush saved the first 30; the 10 after it are lost
])
def test_a_killed_process_loses_at_most_its_last_batch(tmp_path, first, pause, second, expected):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(root=str(ROOT)))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "rec"), str(first), str(pause), str(second)],
                          timeout=60, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    frame = read_records(tmp_path / "rec" / "recv.csv", "recv")
    assert list(frame["id"]) == list(range(expected)), "a contiguous prefix, nothing torn"


def test_run_dir_comes_from_the_option_then_the_environment_then_the_stack_then_a_new_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAUNTLET_RUN_DIR", str(tmp_path / "from-env"))
    assert resolve_run_dir(str(tmp_path / "given"), "ramp") == tmp_path / "given"
    assert resolve_run_dir("", "ramp") == tmp_path / "from-env"
    monkeypatch.delenv("GAUNTLET_RUN_DIR")
    stack_dir = tmp_path / "runs" / "20261123-120000-up"
    stack_dir.mkdir(parents=True)
    assert resolve_run_dir("", "ramp", str(stack_dir)) == stack_dir, "the running stack's run dir comes next"
    (stack_dir / "records" / "w0").mkdir(parents=True)
    second = resolve_run_dir("", "ramp", str(stack_dir))
    assert second != stack_dir and second.name.endswith("-ramp"), "a second load gets a run dir of its own"
    made = resolve_run_dir("", "spike")
    assert made.parent == tmp_path / "runs" and made.name.endswith("-spike")
    first = new_run_dir("ramp", tmp_path / "runs", now=0)
    first.mkdir(parents=True)
    assert new_run_dir("ramp", tmp_path / "runs", now=0).name == first.name + "-2", "same second, unique name"
    assert os.path.basename(str(first)).count("-") >= 2
