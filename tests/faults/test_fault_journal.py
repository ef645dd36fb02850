"""The fault journal's format (docs/architecture.md) and its concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
from pathlib import Path

import pytest

from chaos.journal import OUTCOMES, Journal, read_journal

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
KEYS = ["id", "kind", "target", "params", "start", "end", "outcome", "error"]


def test_records_are_written_on_inject_and_heal_and_merged_by_id(tmp_path):
    journal = Journal.in_run_dir(tmp_path)
    a = journal.open("partition", "r2", {"dependency": "redis"}, start=100.0)
    b = journal.open("kill", "r1", {}, start=101.0)
    journal.close(a, "ok", end=110.5)
    lines = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert [list(line) for line in lines] == [KEYS] * 3, "exact key set and order of the documented format"
    assert lines[0] == {"id": "f1", "kind": "partition", "target": "r2", "params": {"dependency": "redis"},
                        "start": 100.0, "end": None, "outcome": "active", "error": None}
    assert lines[2]["id"] == "f1" and lines[2]["end"] == 110.5 and lines[2]["outcome"] == "ok"
    merged = read_journal(tmp_path / "faults.jsonl")
    assert [(r.id, r.outcome, r.end) for r in merged] == [("f1", "ok", 110.5), ("f2", "active", None)]
    assert b.active and not merged[0].active


def test_reader_skips_a_torn_last_line_and_a_missing_file(tmp_path):
    assert read_journal(tmp_path / "faults.jsonl") == []
    journal = Journal.in_run_dir(tmp_path)
    journal.open("kill", "r1", {})
    with open(journal.path, "a") as fh:
        fh.write('{"id": "f2", "kind": "pa')  # a writer killed mid-line
    assert [r.id for r in read_journal(journal.path)] == ["f1"]
    assert journal.open("pause", "r2", {}).id == "f2", "ids continue after a torn line"


def documented_outcomes() -> tuple[str, ...]:
    """The outcomes listed on the "`outcome`: ..." line of docs/architecture.md."""
    for line in ARCHITECTURE.read_text().splitlines():
        if line.startswith("`outcome`:"):
            return tuple(re.findall(r"`([^`]+)`", line)[1:])
    raise AssertionError(f"no `outcome`: line in {ARCHITECTURE}")


def test_outcomes_are_the_documented_ones(tmp_path):
    # Parsed from the docs, so the code and the documented format cannot drift apart.
    assert OUTCOMES == documented_outcomes()
    journal = Journal.in_run_dir(tmp_path)
    record = journal.open("kill", "r1", {})
    for outcome in OUTCOMES:
        journal.update(record, outcome=outcome)
    with pytest.raises(ValueError, match="meh"):
        journal.update(record, outcome="meh")


def _append_many(path: str, n: int) -> None:
    journal = Journal(path)
    for i in range(n):
        record = journal.open("kill", f"r{i}", {"i": i})
        journal.close(record, "ok")


def test_threads_and_processes_appending_at_once_get_unique_ids_and_whole_lines(tmp_path):
    path = str(tmp_path / "faults.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, 20)) for _ in range(3)]
    threads = [threading.Thread(target=_append_many, args=(path, 20)) for _ in range(3)]
    for worker in procs + threads:
        worker.start()
    for thread in threads:
        thread.join(30)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    lines = (tmp_path / "faults.jsonl").read_text().splitlines()
    assert len(lines) == 6 * 20 * 2
    assert all(json.loads(line) for line in lines), "no interleaved partial lines"
    records = read_journal(path)
    assert len(records) == 120 and len({r.id for r in records}) == 120
    assert all(r.outcome == "ok" and r.end is not None for r in records)
