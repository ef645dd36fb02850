"""`gauntlet chaos` from separate processes against a stack that `gauntlet up --detach` runs,
as a user drives it from a second terminal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fault_support import get, wait_for

from chaos.journal import read_journal
from chaos.toxiproxy_client import ToxiproxyClient

pytestmark = pytest.mark.integration  # the fault catalogue itself; `-m chaos` is the SUT under load


def gauntlet(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


class Child:
    """A `gauntlet` process whose output a thread collects, so waits on it have deadlines."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "harness.cli", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, needle: str, timeout: float) -> str:
        wait_for(lambda: needle in self.output or self.proc.poll() is not None, timeout, f"{needle!r} in output")
        assert needle in self.output, self.output
        return self.output

    def finish(self, timeout: float) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code, self.output

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        self.proc.stdout.close()


class Stack:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.state = json.loads((cwd / ".gauntlet" / "stack.json").read_text())
        self.journal = Path(self.state["run_dir"]) / "faults.jsonl"

    def replica(self, name: str) -> dict:
        live = json.loads(gauntlet("status", "--json", cwd=self.cwd).stdout)
        return next(r for r in live["replicas"] if r["name"] == name)

    def ready(self, name: str) -> int:
        return get(self.replica(name)["url"] + "/api/ready", 5)[0]

    def proxies_clean(self) -> bool:
        client = ToxiproxyClient(self.state["proxy_api_url"])
        return all(p.enabled and not p.toxics for p in client.proxies().values())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    up = gauntlet("up", "--detach", "--replicas", "3", "--broker", "redis", cwd=cwd, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield Stack(cwd)
    finally:
        down = gauntlet("down", cwd=cwd, timeout=90)
    # Checked after the block: an assert inside `finally` would replace a failed `up`.
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture
def clean(stack):
    yield stack
    gauntlet("chaos", "heal", cwd=stack.cwd)


def test_partition_for_a_while_from_another_terminal(clean):
    stack = clean
    child = Child("chaos", "partition", "r2", "redis", "--for", "3s", cwd=stack.cwd)
    try:
        child.wait_for_output("inject partition r2", 20)
        wait_for(lambda: stack.ready("r2") == 503, 5, "r2 unready while partitioned")
        assert stack.ready("r1") == 200 and stack.ready("r3") == 200
        code, rest = child.finish(30)
    finally:
        child.kill()
    assert code == 0, rest
    assert "healed partition r2" in rest and ": ok" in rest
    wait_for(lambda: stack.ready("r2") == 200, 15, "r2 ready after heal")
    record = read_journal(stack.journal)[-1]
    assert (record.kind, record.target, record.params["dependency"], record.outcome) == \
        ("partition", "r2", "redis", "ok")
    assert 2.5 < record.end - record.start < 10


def test_a_fault_without_for_stays_until_chaos_heal(clean):
    stack = clean
    pid = stack.replica("r3")["pid"]
    done = gauntlet("chaos", "kill", "r3", cwd=stack.cwd)
    assert done.returncode == 0, done.stderr
    assert "is active" in done.stdout and "gauntlet chaos heal" in done.stdout
    wait_for(lambda: stack.replica("r3")["pid"] is None, 5, "r3 to be dead")
    status = gauntlet("chaos", "status", cwd=stack.cwd)
    assert "kill r3" in status.stdout
    healed = gauntlet("chaos", "heal", cwd=stack.cwd)
    assert healed.returncode == 0, healed.stderr
    assert "healed kill r3" in healed.stdout
    new_pid = stack.replica("r3")["pid"]
    assert new_pid and new_pid != pid and stack.ready("r3") == 200
    assert not [r for r in read_journal(stack.journal) if r.active]
    again = gauntlet("chaos", "heal", cwd=stack.cwd)
    assert "nothing to heal" in again.stdout


def test_ctrl_c_during_play_heals_everything_and_closes_the_journal(clean, tmp_path):
    stack = clean
    timeline = tmp_path / "long.toml"
    timeline.write_text("""
name = "long"
[[fault]]
kind = "pause"
target = "r1"
at = "0s"
for = "60s"
[[fault]]
kind = "latency"
target = "redis"
at = "0s"
for = "60s"
latency = "500ms"
[[fault]]
kind = "kill"
target = "r3"
at = "40s"
for = "5s"
""")
    pid = stack.replica("r1")["pid"]
    child = Child("chaos", "play", str(timeline), cwd=stack.cwd)
    try:
        out = child.wait_for_output("active: ", 20)
        assert "inject pause r1" in out and "inject latency redis" in out
        assert not stack.proxies_clean()
        with open(f"/proc/{pid}/stat") as fh:
            assert fh.read().rsplit(")", 1)[1].split()[0] == "T", "r1 is stopped while the fault plays"
        t0 = time.monotonic()
        child.proc.send_signal(signal.SIGINT)
        code, rest = child.finish(30)
    finally:
        child.kill()
    assert code == 130, rest
    assert time.monotonic() - t0 < 15, "Ctrl-C heals at once, it does not wait out the timeline"
    assert "interrupted" in rest and "2 faults played, 0 failed (interrupted)" in rest
    assert stack.proxies_clean()
    with open(f"/proc/{pid}/stat") as fh:
        assert fh.read().rsplit(")", 1)[1].split()[0] != "T", "r1 continued"
    assert stack.ready("r1") == 200 and stack.replica("r3")["pid"], "r3 was never killed"
    records = read_journal(stack.journal)
    assert not [r for r in records if r.active]
    # Both faults start at 0s on threads of their own, so their journal order is not fixed.
    assert sorted((r.kind, r.outcome) for r in records[-2:]) == [("latency", "ok"), ("pause", "ok")]


def test_sigterm_during_a_timed_fault_heals_at_once(clean):
    stack = clean
    child = Child("chaos", "drain", "r2", "--for", "60s", cwd=stack.cwd)
    try:
        child.wait_for_output("inject drain r2", 20)
        assert stack.replica("r2")["status"] == "drained"
        child.proc.send_signal(signal.SIGTERM)
        code, rest = child.finish(20)
    finally:
        child.kill()
    assert code == 130 and "healed drain r2" in rest
    assert stack.replica("r2")["status"] == "running"


def test_monkey_from_the_cli_is_replayed_by_its_seed(clean):
    stack = clean
    args = ("chaos", "play", "--monkey", "--seed", "11", "--faults", "pause,latency", "--interval", "1s..1.5s",
            "--hold", "0.5s..1s", "--duration", "4s")
    first = gauntlet(*args, cwd=stack.cwd)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "monkey seed 11" in first.stdout
    stored = Path(stack.state["run_dir"]) / "chaos-monkey-11.toml"
    assert stored.exists()
    second = gauntlet(*args, cwd=stack.cwd)

    def plan(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith("  at ")]
    assert plan(first.stdout) and plan(first.stdout) == plan(second.stdout)
    meta = json.loads((Path(stack.state["run_dir"]) / "run.json").read_text())
    assert meta["chaos_seed"] == 11
    assert stack.proxies_clean()


@pytest.mark.parametrize("args,message", [
    (["chaos", "kill", "r9"], "no replica named 'r9' (replicas: r1, r2, r3)"),
    (["chaos", "kill"], "needs a target replica"),
    (["chaos", "latency", "redis", "-p", "latency=fast"], "parameter latency: invalid duration 'fast'"),
    (["chaos", "latency", "redis", "-p", "rate"], "expected KEY=VALUE"),
    (["chaos", "latency", "redis", "-p", "rate=5"], "unknown parameter 'rate'"),
    (["chaos", "latency", "kafka"], "no dependency named 'kafka'"),
    (["chaos", "kill", "r2", "--for", "soon"], "invalid duration 'soon'"),
    (["chaos", "partition", "r2", "mysql"], "parameter dependency: expected one of postgres, redis, broker"),
    (["chaos", "play", "nope"], "no such timeline file"),
    (["chaos", "play"], "name a timeline to play"),
    (["chaos", "play", "--monkey", "--faults", "kill,nuke"], "unknown fault 'nuke'"),
])
def test_bad_input_gets_one_clear_line_and_exit_2(stack, args, message):
    done = gauntlet(*args, cwd=stack.cwd)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_timeline_is_refused_before_anything_is_injected(stack, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\nkind = "kill"\ntarget = "r1"\nat = "1s"\nfor = "5s"\n'
                   '[[fault]]\nkind = "pause"\ntarget = "r1"\nat = "2s"\nfor = "5s"\n')
    before = len(read_journal(stack.journal))
    done = gauntlet("chaos", "play", str(bad), cwd=stack.cwd)
    assert done.returncode == 2 and f"{bad}: fault #2 (pause r1): overlaps fault #1" in done.stderr
    assert len(read_journal(stack.journal)) == before


def test_without_a_stack_the_cli_says_so(tmp_path):
    done = gauntlet("chaos", "kill", "r1", cwd=tmp_path)
    assert done.returncode == 2 and "no running stack" in done.stderr
    listing = gauntlet("chaos", "list", cwd=tmp_path)
    assert listing.returncode == 0
    for kind in ("kill", "terminate", "pause", "restart", "latency", "bandwidth", "blackhole", "reset",
                 "slow-close", "down", "crash", "flush", "partition", "drain", "rolling-restart", "scale-out",
                 "scale-in"):
        assert f"\n{kind}" in "\n" + listing.stdout
    helped = gauntlet("chaos", "--help", cwd=tmp_path)
    assert "gauntlet chaos partition r2 redis --for 20s" in helped.stdout


def test_scale_out_and_crash_through_the_control_api(clean):
    stack = clean
    child = Child("chaos", "scale-out", "--for", "2s", cwd=stack.cwd)
    try:
        child.wait_for_output("inject scale-out stack", 20)
        wait_for(lambda: any(r["name"] == "r4" for r in json.loads(
            gauntlet("status", "--json", cwd=stack.cwd).stdout)["replicas"]), 20, "r4 to join")
        code, out = child.finish(60)
    finally:
        child.kill()
    assert code == 0 and "healed scale-out stack" in out, out
    names = [r["name"] for r in json.loads(gauntlet("status", "--json", cwd=stack.cwd).stdout)["replicas"]]
    assert names == ["r1", "r2", "r3"], "heal removed the replica it added"

    crashed = gauntlet("chaos", "crash", "redis", "--for", "1s", cwd=stack.cwd)
    assert crashed.returncode == 0, crashed.stdout + crashed.stderr
    assert "healed crash redis" in crashed.stdout
    status = json.loads(gauntlet("status", "--json", cwd=stack.cwd).stdout)
    redis = next(c for c in status["components"] if c["name"] == "redis")
    assert redis["pid"] and redis["pid"] != next(c for c in stack.state["components"] if c["name"] == "redis")["pid"]
    wait_for(lambda: all(stack.ready(n) == 200 for n in ("r1", "r2", "r3")), 20, "every replica ready again")
