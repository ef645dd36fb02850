"""--payload-size: exact sizes in multibyte text, up-front validation, and a receiver
that tells an intact payload from one cut short or altered (the delivery check's
`corrupted`)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.adapters.declarative import FRAME_DEFAULTS, FrameFields
from scenarios.adapters.reference import decode_notification
from scenarios.payload import intact, padded, parse_payload_size
from scenarios.settings import SettingsError, parse_args

ROOT = Path(__file__).resolve().parents[2]


def _utf8_size(data: dict) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


@pytest.mark.parametrize("size", [100, 2000, 7999, 8000, 8001, 12000, 100_000])
def test_padded_data_is_exactly_the_size_asked_in_multibyte_text(size):
    rng = random.Random(size)
    data = padded({"key": "w0-1", "sent_ts": 1765100000.123456}, size, rng)
    assert _utf8_size(data) == size
    widths = {len(ch.encode()) for ch in data["pad"]}
    if size >= 2000:
        assert {1, 2, 3, 4} <= widths, "the pad mixes every UTF-8 width"
    assert intact(data) is True


def test_a_range_draws_sizes_across_it():
    spec = parse_payload_size("40..12000")
    rng = random.Random(3)
    sizes = [spec.draw(rng) for _ in range(2000)]
    assert min(sizes) >= 40 and max(sizes) <= 12000
    assert sum(s > 8000 for s in sizes) > 500, "about a third cross Postgres NOTIFY's 8000 bytes"


def test_a_cut_or_altered_payload_is_not_intact_and_an_unpadded_one_is_not_judged():
    data = padded({"key": "w0-1", "sent_ts": 1.0}, 9000, random.Random(1))
    assert intact({**data, "pad": data["pad"][:-40]}) is False
    assert intact({**data, "pad": data["pad"].replace("日", "?", 1)}) is False
    assert intact({k: v for k, v in data.items() if k != "pad"}) is False
    assert intact({"key": "w0-1", "sent_ts": 1.0}) is None


def test_adapters_read_intact_from_the_frame():
    data = padded({"key": "w0-7", "sent_ts": 1.0}, 3000, random.Random(2))
    frame = {"type": "notification", "id": 7, "user": "u1", "origin": "r1", "data": data}
    assert decode_notification(frame).intact is True
    cut = {**frame, "data": {**data, "pad": data["pad"][:-1]}}
    assert decode_notification(cut).intact is False
    fields = FrameFields(FRAME_DEFAULTS, "jsonws")
    assert fields.decode(frame).intact is True and fields.decode(cut).intact is False


@pytest.mark.parametrize("argv, message", [
    (["--payload-size", "big"], "--payload-size must be bytes (e.g. 2000) or a range low..high"),
    (["--payload-size", "0"], "--payload-size must be between 1 and"),
    (["--payload-size", "12000..40"], "--payload-size range '12000..40' ends below where it starts"),
])
def test_bad_payload_sizes_are_refused_naming_the_argument(argv, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_args(argv)


def test_bad_payload_size_in_the_load_table_is_refused():
    with pytest.raises(SettingsError, match=r"load\.payload_size"):
        parse_args([], {"payload_size": True})
    assert str(parse_args([], {"payload_size": 2000}).payload_size) == "2000"


def test_gauntlet_run_refuses_a_bad_payload_size_before_anything_starts(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "ramp", "--locust-args",
                           "--payload-size 40..x"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--payload-size" in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists(), "nothing started"
