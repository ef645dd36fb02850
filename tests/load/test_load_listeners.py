"""The load generator's control planes: every listener on loopback by default (the
web UI, the `--processes` master), another address only when asked and then with a
warning, and workers that must prove the stack's token before the master hands them
the secret and the publisher key. The audit brings a whole stack up (fault proxies and
the control API included) with a `--processes 2` load on it, and lists every socket
that any of their processes listens on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from load_support import ROOT, start_locust

from harness.ports import free_port, port_open
from tests.support import stop_process, wait_for

pytestmark = pytest.mark.integration

LOOPBACK_IPS = {"127.0.0.1", "::1"}


def listeners(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket and bound UDP socket of `pids`."""
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid not in pids or not conn.laddr:
            continue
        listening = conn.status == psutil.CONN_LISTEN or (conn.type == 2 and not conn.raddr)
        if listening:
            out.append((conn.pid, conn.laddr.ip, conn.laddr.port))
    return out


def tree(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid, *(c.pid for c in proc.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


@pytest.fixture
def full_stack(tmp_path):
    """A stack as `gauntlet up` runs it: fault proxies, nginx, the control API."""
    from harness.control import ControlServer
    from harness.spec import StackSpec
    from harness.stack import LocalStack

    stack = LocalStack(StackSpec(replicas=2, broker="redis", runs_dir=tmp_path / "runs",
                                 state_path=tmp_path / "stack.json"))
    control = None
    try:
        stack.up()
        control = ControlServer(stack)
        control.start()
        stack.control_url = control.url
        stack.publish_state()
        yield stack, tmp_path / "stack.json"
    finally:
        if control is not None:
            control.stop()
        stack.down()


def stack_pids(stack) -> set[int]:
    pids = {os.getpid()}  # the control API is a thread of the harness (this process)
    for server in [stack.postgres, stack.redis, stack.nginx, stack.proxy, *stack.replicas.values()]:
        pids |= tree(server.pid)
    return pids


def test_a_stack_with_load_on_it_listens_on_loopback_only(full_stack, tmp_path):
    stack, state = full_stack
    env = {"GAUNTLET_STATE": str(state)}
    with open(tmp_path / "locust.log", "wb") as log:
        # The default bind host is what is audited; the port is a free one, as the workers of
        # another run on this machine would knock on Locust's default 5557 (and be refused).
        port = str(free_port())
        proc = start_locust(["--headless", "-t", "30s", "--processes", "2", "--master-bind-port", port,
                             "--master-port", port, "--stages", "2s:10,60s:10", "--only-summary"], tmp_path, env, log)
        try:
            wait_for(lambda: len(list((tmp_path / "run" / "records").glob("w*/conn.csv"))) == 2, 60,
                     "both workers to record")
            load = tree(proc.pid)
            assert len(load) >= 3, "a master and two workers"
            found = listeners(stack_pids(stack) | load)
            by_load = [entry for entry in found if entry[0] in load]
        finally:
            stop_process(proc, grace=30)
    assert by_load, "the Locust master listens for its workers"
    outside = [entry for entry in found if entry[1] not in LOOPBACK_IPS]
    assert not outside, f"listeners outside loopback: {outside}"
    ports = {entry[2] for entry in found}
    assert {stack.nginx.port, stack.postgres.port, stack.redis.port, stack.proxy.port} <= ports
    text = (tmp_path / "locust.log").read_text(errors="replace")
    assert text.count("the master accepted this worker") == 2, "both forked workers proved the token"
    assert "refusing worker" not in text and "Traceback" not in text


def test_negative_control_the_audit_sees_a_master_on_every_interface(tmp_path, load_stack, locust_env):
    port = free_port()
    with open(tmp_path / "locust.log", "wb") as log:
        proc = start_locust(["--headless", "-t", "20s", "--processes", "2", "--master-bind-host", "0.0.0.0",
                             "--master-bind-port", str(port), "--master-port", str(port),
                             "--stages", "2s:4,60s:4", "--only-summary"], tmp_path, locust_env, log)
        try:
            wait_for(lambda: [e for e in listeners(tree(proc.pid)) if e[2] == port], 30, "the master to listen")
            found = listeners(tree(proc.pid))
        finally:
            stop_process(proc, grace=30)
    assert ("0.0.0.0", port) in {(ip, p) for _, ip, p in found}
    assert "the Locust master listens on 0.0.0.0" in (tmp_path / "locust.log").read_text(errors="replace")


def test_the_web_ui_listens_on_loopback_and_hides_the_fields_a_shape_ignores(tmp_path, load_stack, locust_env):
    port = free_port()
    with open(tmp_path / "locust.log", "wb") as log:
        proc = start_locust(["--web-port", str(port)], tmp_path, locust_env, log)
        try:
            wait_for(lambda: port_open(port), 30, "the web UI to listen")
            found = listeners(tree(proc.pid))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                page = resp.read().decode()
        finally:
            stop_process(proc, grace=30)
    assert {(ip, p) for _, ip, p in found if p == port} == {("127.0.0.1", port)}, found
    args = json.loads(page.split("window.templateArgs = ", 1)[1].split("\n", 1)[0].rstrip(";"))
    assert args["hide_common_options"] is True, "user count and ramp fields that the stages override"
    assert "%%" not in page and "u{i mod K}" in page
    assert "listens on" not in (tmp_path / "locust.log").read_text(errors="replace"), "no warning at loopback"


def _worker(tmp_path: Path, name: str, port: int, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    home = tmp_path / name
    home.mkdir()
    log = home / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "ramp.py"), "--worker",
             "--master-port", str(port), "--run-dir", str(home / "local")],
            cwd=home, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def test_a_worker_without_the_stack_token_gets_no_users_and_no_credentials(tmp_path, load_stack, locust_env):
    stack, state_path = load_stack
    secret = stack.state().secret
    port = free_port()
    master_dir = tmp_path / "master"
    master_dir.mkdir()
    log_path = master_dir / "locust.log"
    procs: list[subprocess.Popen] = []
    try:
        with open(log_path, "wb") as log:
            master = start_locust(["--headless", "-t", "8s", "--master", "--expect-workers", "1",
                                   "--master-bind-port", str(port), "--stages", "2s:8,30s:8", "--only-summary"],
                                  master_dir, locust_env, log)
            procs.append(master)
            # The impostor comes first, with no state file and a wrong token: it is refused,
            # and its refusal neither starts nor ends the run.
            bad, bad_log = _worker(tmp_path, "bad", port, {"GAUNTLET_WORKER_TOKEN": "not-the-token",
                                                           "GAUNTLET_STATE": str(tmp_path / "none.json")})
            procs.append(bad)
            wait_for(lambda: "refusing worker" in log_path.read_text(errors="replace"), 60, "the refusal")
            good, good_log = _worker(tmp_path, "good", port, locust_env)
            procs.append(good)
            code = master.wait(timeout=90)
        good.wait(timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    master_log = (master_dir / "locust.log").read_text(errors="replace")
    assert code == 0, master_log[-3000:]
    assert master_log.count("refusing worker") == 1, master_log[-3000:]
    assert "the master accepted this worker" in good_log.read_text(errors="replace")
    bad_text = bad_log.read_text(errors="replace")
    assert "the master accepted this worker" not in bad_text and secret not in bad_text
    workers = [p.name for p in (master_dir / "run" / "records").iterdir() if p.is_dir()]
    assert len(workers) == 1, f"records only from the honest worker: {workers}"
    assert not list((tmp_path / "bad").rglob("pub.csv")) or all(
        len(p.read_text().splitlines()) <= 1 for p in (tmp_path / "bad").rglob("pub.csv")), "the impostor published"
