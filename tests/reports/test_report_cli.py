"""`gauntlet report RUN_DIR`: exit codes, messages, the verdict table."""

from __future__ import annotations

import io
import shutil

from reports.cli import report_main


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = report_main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_missing_run_dir(tmp_path):
    code, out, err = run_cli(str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.startswith("gauntlet report: error: run directory") and "does not exist" in err
    assert "Traceback" not in err


def test_empty_run_dir(tmp_path):
    (tmp_path / "run").mkdir()
    code, _, err = run_cli(str(tmp_path / "run"))
    assert code == 2 and "is empty" in err


def test_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "run" / "stuff").mkdir(parents=True)
    code, _, err = run_cli(str(tmp_path / "run"))
    assert code == 2 and "is not a run directory" in err


def test_bad_threshold_shows_the_caret_before_any_work(clean_run, tmp_path):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")
    code, _, err = run_cli(str(run_dir), "--slo", "http_req_duration: p(95<500")
    assert code == 2
    assert "expected ')' to close p(" in err and "^" in err
    assert not (run_dir / "report.html").exists()


def test_bad_duration_option(clean_run):
    code, _, err = run_cli(str(clean_run.run_dir), "--late-after", "soon")
    assert code == 2 and "--late-after" in err and "soon" in err


def test_clean_run_exits_zero_and_prints_the_table(clean_run, tmp_path):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")
    code, out, err = run_cli(str(run_dir), "--slo", "delivery_lost_eventual: count==0")
    assert code == 0, out + err
    lines = out.splitlines()
    assert any(line.startswith("PASS  delivery") for line in lines)
    assert any(line.startswith("PASS  slo delivery_lost_eventual: count==0") for line in lines)
    assert "verdict: PASS" in out
    assert lines[-1] == f"report: {run_dir / 'report.html'}"
    assert (run_dir / "report.html").exists() and (run_dir / "summary.json").exists()


def test_failing_run_exits_one(full_run, tmp_path):
    run_dir = shutil.copytree(full_run.run_dir, tmp_path / "run")
    code, out, _ = run_cli(str(run_dir), "-q")
    assert code == 1
    assert out.strip() == f"report: {run_dir / 'report.html'}"


def test_no_default_slo(clean_run, tmp_path):
    run_dir = shutil.copytree(clean_run.run_dir, tmp_path / "run")
    code, out, _ = run_cli(str(run_dir), "--no-default-slo")
    assert code == 0
    assert "slo " not in out


def test_unknown_option_is_a_usage_error(capsys):
    assert report_main(["run", "--colour"]) == 2
    assert "unrecognized arguments: --colour" in capsys.readouterr().err


def test_help_teaches_the_syntax(capsys):
    assert report_main(["--help"]) == 0
    text = capsys.readouterr().out
    for words in ("RUN_DIR", "--slo", "p(95)<500", "ws_delivery_latency{path:cross}", "delivery_lost_eventual",
                  "exit status"):
        assert words in text


def test_a_run_that_published_nothing_exits_three(mini):
    # Subscribers connected and HTTP answered, but no publish: nothing about delivery was shown.
    mini.connect("a", "u1", 1, until=50)
    for t in range(1, 50):
        mini.http(t, "GET /api/items/1", 5.0)
    mini.hostile(20)
    run_dir = mini.write()
    code, out, err = run_cli(str(run_dir))
    assert code == 3, out + err
    assert "????  delivery" in out and "no publishes recorded" in out
    # The negative control: the same run with its publishes delivered passes with 0.
    # (two in a row, so that real-time order can be judged too)
    mini.publish("w0-1", 10, user="u1")
    mini.recv("a", "u1", "w0-1", 10.05)
    mini.publish("w0-2", 11, user="u1")
    mini.recv("a", "u1", "w0-2", 11.05)
    code, out, err = run_cli(str(mini.write()))
    assert code == 0, out + err


def test_help_documents_the_unknown_exit_code(capsys):
    assert report_main(["--help"]) == 0
    assert "3 no check failed but one could not be judged" in capsys.readouterr().out
