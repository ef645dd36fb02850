"""Open-file limits and the load balancer's sizing: the first walls at thousands of
WebSockets (harness/servers/limits.py; docs/capacity.md, 10,000 sockets)."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.servers.limits import OpenFiles, nginx_limits

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
LOW = 512

SPAWN = textwrap.dedent("""
    import resource, subprocess, sys
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, ({low}, hard))   # as many systems start a process
    if sys.argv[1] == "raise":
        from harness.servers.limits import raise_open_files
        raise_open_files()
    out = subprocess.run(["sh", "-c", "ulimit -Sn"], capture_output=True, text=True).stdout
    print(out.strip())
""").format(low=LOW)


def _child_soft_limit(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SPAWN, mode], capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(HARD == resource.RLIM_INFINITY or HARD <= LOW, reason="needs a finite hard limit above 512")
def test_children_of_the_harness_start_with_soft_raised_to_hard():
    assert _child_soft_limit("as-is") == LOW, "negative control: a child inherits the low soft limit"
    assert _child_soft_limit("raise") == HARD


def test_nginx_gets_as_many_connections_per_worker_as_its_descriptors_allow():
    limits = nginx_limits(OpenFiles(1024, 4096))
    assert (limits.rlimit_nofile, limits.worker_connections) == (4096, 4032)
    assert limits.websockets_per_worker == 2016  # a proxied socket is two connections
    assert nginx_limits(OpenFiles(1024, 10**9)).rlimit_nofile == 65_536, "capped: slots are allocated upfront"


def _open_files_of(pid: int) -> tuple[int, int]:
    # /proc, not prlimit: the workers run as another account.
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc")


def test_a_real_nginx_runs_at_that_limit_with_a_listener_per_worker(tmp_path):
    from harness.ports import free_port
    from harness.servers.nginx import NginxServer, Upstream

    expected = nginx_limits()
    lb = NginxServer(tmp_path / "lb", free_port(), tmp_path, "round_robin")
    held: list[socket.socket] = []
    try:
        lb.start([Upstream("r1", free_port())], time.monotonic() + 15)
        text = lb.conf.read_text()
        assert f"worker_connections {expected.worker_connections};" in text and " reuseport;" in text
        workers = [p for p in psutil.Process(lb.proc.pid).children() if p.status() != psutil.STATUS_ZOMBIE]
        assert len(workers) == 2
        for w in workers:
            assert _open_files_of(w.pid) == (expected.rlimit_nofile, expected.rlimit_nofile)
        for _ in range(200):  # idle connections: nginx holds them until its client timeout
            held.append(socket.create_connection(("127.0.0.1", lb.port), timeout=5))
        deadline = time.monotonic() + 5
        while True:
            counts = [sum(1 for c in w.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
                          and c.laddr.port == lb.port) for w in workers]
            if sum(counts) >= 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sum(counts) == 200, counts
        assert min(counts) >= 40, f"one worker took nearly every connect: {counts}"
    finally:
        for s in held:
            s.close()
        lb.stop()
