"""The run reader: layout, types, and what a dying writer leaves behind."""

from __future__ import annotations

import json

import pytest

from reports.records import KINDS, RecordError, load_run, read_faults

from report_support import T0


def test_reads_every_kind_with_types(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.publish("k2", 11, user="u1", outcome="unknown")
    mini.recv("a", "u1", "k1", 10.1)
    mini.http(10, "POST /api/notifications", 12.5, status=201)
    mini.http(11, "GET /api/items/{id}", 3.0, ok=False, status=None, instance=None)
    run = load_run(mini.write())
    assert len(run.pub) == 2 and len(run.recv) == 1 and len(run.conn) == 1 and len(run.http) == 2
    assert str(run.pub["id"].dtype) == "Int64" and run.pub["id"].isna().sum() == 1
    assert run.pub["ts_ack"].isna().sum() == 1
    assert run.http["ok"].tolist() == [True, False]
    assert run.http["status"].isna().tolist() == [False, True]
    assert run.recv["replay"].dtype == bool
    assert run.pub["ts_sent"].iloc[0] == pytest.approx(T0 + 10)
    assert run.workers == ("w0",)
    assert run.meta.name == "mini" and run.meta.seed == 1
    assert run.t0 == T0


def test_concatenates_workers(mini):
    mini.connect("a", "u1", 0)
    mini.write("w0")
    mini.rows["conn"] = []
    mini.connect("b", "u2", 1, instance="r2")
    mini.write("w1")
    run = load_run(mini.root)
    assert sorted(run.conn["sub"]) == ["a", "b"]
    assert sorted(run.conn["worker"].astype(str)) == ["w0", "w1"]
    assert run.workers == ("w0", "w1")


def test_truncated_last_line_is_dropped_with_a_warning(mini):
    for i in range(3):
        mini.publish(f"k{i}", 10 + i, user="u1")
    path = mini.write() / "records" / "w0" / "pub.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # cut inside the last row
    run = load_run(mini.root)
    assert list(run.pub["key"]) == ["k0", "k1"]
    assert any("pub.csv" in w and "truncated" in w for w in run.warnings)


def test_complete_last_line_without_newline_is_kept(mini):
    for i in range(2):
        mini.publish(f"k{i}", 10 + i, user="u1")
    path = mini.write() / "records" / "w0" / "pub.csv"
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    run = load_run(mini.root)
    assert list(run.pub["key"]) == ["k0", "k1"]
    assert not run.warnings


def test_cut_inside_a_quoted_field(mini):
    mini.http(1, "GET /a", 1.0)
    mini.http(2, "GET /b", 1.0)
    path = mini.write() / "records" / "w0" / "http.csv"
    path.write_bytes(path.read_bytes() + b'3.0,GET /c,GET,500,1.0,0,r1,"boom, and')
    run = load_run(mini.root)
    assert list(run.http["name"].astype(str)) == ["GET /a", "GET /b"]


@pytest.mark.parametrize("content", [b"", b"ts,users,soc", b"ts,users,sockets\r\n"])
def test_empty_or_header_only_files_are_empty_tables(mini, content):
    path = mini.write() / "records" / "w0" / "users.csv"
    path.write_bytes(content)
    run = load_run(mini.root)
    assert len(run.users) == 0
    assert list(run.users.columns[:3]) == list(KINDS["users"])


def test_missing_kinds_are_empty_tables(mini):
    mini.connect("a", "u1", 0)
    root = mini.write()
    for kind in ("http", "pub", "recv", "users"):
        (root / "records" / "w0" / f"{kind}.csv").unlink()
    run = load_run(root)
    assert len(run.conn) == 1
    assert len(run.pub) == len(run.recv) == len(run.http) == 0
    assert "ts_sent" in run.pub.columns


def test_bad_value_names_file_line_and_column(mini):
    mini.publish("k1", 10, user="u1")
    mini.publish("k2", 11, user="u1")
    path = mini.write() / "records" / "w0" / "pub.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(f"{T0 + 11:.6f}", "soon", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError) as err:
        load_run(mini.root)
    message = str(err.value)
    assert "pub.csv" in message and "line 3" in message and "'ts_intended'" in message and "'soon'" in message


def test_bad_flag_is_an_error(mini):
    mini.connect("a", "u1", 0)
    mini.publish("k1", 10, user="u1")
    mini.recv("a", "u1", "k1", 10.1)
    mini.rows["recv"][0]["replay"] = "maybe"
    with pytest.raises(RecordError, match=r"recv.csv: line 2: column 'replay' must be 0 or 1"):
        load_run(mini.write())


def test_malformed_row_in_the_middle_is_an_error(mini):
    mini.http(1, "GET /a", 1.0).http(2, "GET /b", 1.0)
    path = mini.write() / "records" / "w0" / "http.csv"
    lines = path.read_text().splitlines()
    lines.insert(2, "1,2,3,4,5,6,7,8,9,10")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=r"http.csv: malformed CSV: .*line 3"):
        load_run(mini.root)


def test_missing_column_is_an_error(mini):
    path = mini.write() / "records" / "w0" / "conn.csv"
    path.write_text("ts,sub,user,event\n")
    with pytest.raises(RecordError, match=r"conn.csv: header lacks column\(s\) conn, instance, code, detail"):
        load_run(mini.root)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(RecordError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="is not a run directory"):
        load_run(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordError, match="is not a directory"):
        load_run(tmp_path / "file")


def test_bad_run_json_names_the_file(mini):
    root = mini.write()
    (root / "run.json").write_text("{not json")
    with pytest.raises(RecordError, match=r"run.json: not valid JSON"):
        load_run(root)


def test_fault_journal_last_line_per_id_wins(tmp_path):
    lines = [
        {"id": "f1", "kind": "kill", "target": "r2", "start": 10.0, "end": None, "outcome": "active"},
        {"id": "f2", "kind": "partition", "target": "r1", "start": 12.0, "end": None, "outcome": "active"},
        {"id": "f1", "kind": "kill", "target": "r2", "start": 10.0, "end": 20.0, "outcome": "ok"},
    ]
    path = tmp_path / "faults.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"id": "f3", "ki')
    warnings: list[str] = []
    faults = read_faults(path, warnings)
    assert [(f.id, f.end, f.outcome) for f in faults] == [("f1", 20.0, "ok"), ("f2", None, "active")]
    assert faults[1].end_or(99.0) == 99.0
    assert any("truncated" in w for w in warnings)


def test_fault_journal_errors_name_the_line(tmp_path):
    path = tmp_path / "faults.jsonl"
    path.write_text('{"id": "f1", "kind": "kill", "start": 1}\nnot json\n{"id": "f2", "kind": "kill", "start": 2}\n')
    with pytest.raises(RecordError, match=r"faults.jsonl:2: not a JSON object"):
        read_faults(path)
    path.write_text('{"id": "f1", "kind": "kill"}\n')
    with pytest.raises(RecordError, match=r"faults.jsonl:1: fault record lacks 'start'"):
        read_faults(path)
    path.write_text('{"id": "f1", "kind": "kill", "start": 1, "outcome": "maybe"}\n')
    with pytest.raises(RecordError, match=r"unknown fault outcome 'maybe'"):
        read_faults(path)


def test_reads_what_the_load_generator_writes(tmp_path):
    """The scenarios' recorder and this reader share one schema; keep them honest."""
    recorder_mod = pytest.importorskip("scenarios.recorder")
    rec = recorder_mod.Recorder(tmp_path / "run" / "records" / "w3", "w3", batch=10)
    rec.conn((T0, "s1", "u1", 1, "connect", "r1", None, ""))
    rec.pub(("w3-1", "user", "u1", T0 + 1, T0 + 1.001, T0 + 1.02, "ok", 201, 7, "r2", None))
    rec.recv((T0 + 1.03, "s1", "u1", 1, "r1", "w3-1", 7, "r2", T0 + 1.001, 0))
    rec.http((T0 + 1.001, "POST /api/notifications", "POST", 201, 19.0, 1, "r2", None))
    rec.users((T0 + 2, 5, 1))
    rec.close()
    run = load_run(tmp_path / "run")
    assert (len(run.conn), len(run.pub), len(run.recv), len(run.http), len(run.users)) == (1, 1, 1, 1, 1)
    assert int(run.recv["id"].iloc[0]) == 7 and bool(run.http["ok"].iloc[0]) is True


def test_run_json_started_and_ended_are_start_and_end(mini):
    mini.meta = {"name": "h", "started": T0 - 5, "ended": T0 + 99, "slo": ["delivery_lost: count==0"]}
    mini.connect("a", "u1", 0)
    run = load_run(mini.write())
    assert (run.meta.start, run.meta.end) == (T0 - 5, T0 + 99)
    assert run.t0 == T0 - 5 and run.t_end == T0 + 99
    assert run.meta.slo == ("delivery_lost: count==0",)


def test_load_span_is_the_load_not_the_stack_start_or_the_faults(mini):
    mini.meta["start"] = T0 - 30  # the stack took 30 s to come up
    mini.connect("a", "u1", 2, until=50)
    mini.publish("k1", 5, user="u1", ack_after=0.5)
    mini.recv("a", "u1", "k1", 48)
    mini.http(3, "GET /a", 1.0)
    mini.fault("f1", "kill", "r1", 1, 70)
    run = load_run(mini.write())
    assert run.load_span() == pytest.approx((T0 + 2, T0 + 50))
    assert run.t0 == T0 - 30 and run.t_end == pytest.approx(T0 + 70)
    run.conn = run.conn.iloc[:0]  # cached: the tables are read once, however often it is asked
    assert run.load_span() == pytest.approx((T0 + 2, T0 + 50))


def test_load_span_of_a_run_without_records_is_the_run(mini):
    run = load_run(mini.write())
    assert run.load_span() == (run.t0, run.t_end) == (T0, T0 + 60)


def test_write_atomic_leaves_no_partial_file(tmp_path):
    from reports.records import write_atomic

    target = tmp_path / "summary.json"
    target.write_text("old")
    assert write_atomic(target, "new") == target
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
