"""The comparison page across runs."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from report_support import ReportParser

from reports.cli import compare_main
from reports.compare import COMPARE_SECTIONS, build_comparison


@pytest.fixture
def two_runs(full_run, clean_run, tmp_path):
    dirs = []
    for src, broker in ((clean_run.run_dir, "redis"), (full_run.run_dir, "postgres")):
        dst = shutil.copytree(src, tmp_path / broker)
        meta = json.loads((dst / "run.json").read_text())
        meta["stack"]["broker"] = broker
        (dst / "run.json").write_text(json.dumps(meta))
        dirs.append(dst)
    return dirs


def test_comparison_page(two_runs, tmp_path, full_run):
    path = build_comparison(two_runs, tmp_path / "out" / "compare.html", ["delivery_lost_eventual: count==0"])
    p = ReportParser()
    p.feed(path.read_text())
    assert p.sections == list(COMPARE_SECTIONS)
    assert len(p.images) == 4 and all(src.startswith("data:image/png;base64,") for _, src in p.images)
    assert p.urls == []
    text = " ".join(p.text["delivery"])
    assert "redis" in text and "postgres" in text and f"{full_run.truth.lost_eventual:,}" in text
    assert "delivery_lost_eventual: count==0" in " ".join(p.text["slo"])
    # Comparing reads runs; it does not rewrite their verdicts.
    assert not any((d / "summary.json").exists() for d in two_runs)


def test_comparison_needs_two_runs(two_runs, tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        build_comparison(two_runs[:1], tmp_path / "c.html")


def test_compare_cli(two_runs, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "c.html"
    assert compare_main([str(d) for d in two_runs] + ["-o", str(target), "--label", "A", "--label", "B"],
                        out=out, err=err) == 0
    assert out.getvalue().strip() == f"comparison: {target}"
    assert ">A<" in target.read_text() and ">B<" in target.read_text()
    assert compare_main([str(two_runs[0])], out=out, err=err) == 2
    assert "at least two" in err.getvalue()
    assert compare_main([str(two_runs[0]), str(tmp_path / "nope")], out=out, err=err) == 2
    assert "does not exist" in err.getvalue()
