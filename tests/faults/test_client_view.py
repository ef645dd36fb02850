"""A dependency fault must look to a client library like the real failure.

For each failure, the same probes (tests/faults/client_view.py: a raw socket, redis-py
or asyncpg) run twice: against the real failure with no proxy anywhere (the server
killed by hand with `kill -9`; for a blackhole, its packets dropped by an iptables
rule), and through a replica's fault proxy while gauntlet injects the fault. The two
views must be equal, and equal to what chaos/faults/contract.py promises. The negative
controls replay what the faults used to do (crash: kill the server, leave the proxies
listening; blackhole: accept new connections, then hang them): the comparison must
catch them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time

import pytest
from client_view import REDIS_HELLO, ClientView, PostgresProbe, RedisProbe, host_port, new_socket_outcome, view
from fault_support import build

from chaos.faults.contract import AppView, Connect, OpenConnections
from chaos.toxiproxy_client import ToxiproxyClient
from harness.ports import free_port
from harness.servers.redis import RedisServer

pytestmark = pytest.mark.integration

# A raw socket's words for the contract's: the contract is what both views must show.
CONNECT_WORDS = {Connect.REFUSED: "refused", Connect.HANGS: "hang", Connect.ACCEPTED: "accepted"}
OPEN_WORDS = {OpenConnections.CLOSED: "closed", OpenConnections.HANG: "hang", OpenConnections.OPEN: "open"}


@pytest.fixture(scope="module")
def stack(module_stacks):
    return module_stacks(replicas=1, broker="redis")


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def via_proxy(stack, dependency: str) -> str:
    """The URL replica r1 uses: through its own fault proxy."""
    replica = stack.state().replica("r1")
    return replica.redis_url if dependency == "redis" else replica.database_url


def kill_9(pid: int) -> None:
    """A hand `kill -9` of the server: its whole process group (Postgres's backends too)."""
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def assert_keeps_contract(seen: ClientView, contract: AppView) -> None:
    assert seen.new_socket == CONNECT_WORDS[contract.connect], seen
    assert seen.open_socket == OPEN_WORDS[contract.open_connections], seen
    assert seen.data == contract.data.value, seen


def real_redis_crash(tmp_path, persistence: str) -> ClientView:
    """A real Redis (no proxy, nothing of gauntlet in the path), killed with SIGKILL, restarted."""
    server = RedisServer(tmp_path / f"redis-{persistence}", free_port(), tmp_path / f"redis-{persistence}.log",
                         persistence=persistence)
    try:
        server.start(time.monotonic() + 10)
        probe = RedisProbe(server.url)
        kill_9(server.proc.pid)
        server.proc.stop()  # reap it
        during = probe.during()
        server.start(time.monotonic() + 10)
        return view(during, probe.after())
    finally:
        server.stop()


def faulted_redis(stack, injector, handle, kind: str, **params) -> ClientView:
    probe = RedisProbe(via_proxy(stack, "redis"))
    injection = injector.inject(build(kind, "redis", handle, **params))
    assert injection.inject_error is None, injection.inject_error
    try:
        during = probe.during()
    finally:
        assert injector.heal(injection).outcome == "ok"
    return view(during, probe.after())


@pytest.mark.parametrize("data,persistence", [("kept", "aof"), ("lost", "none")])
def test_redis_crash_looks_to_redis_py_like_a_real_kill_9(stack, handle, injector, tmp_path, data, persistence):
    real = real_redis_crash(tmp_path, persistence)
    fault = faulted_redis(stack, injector, handle, "crash", data=data)
    assert real.new_socket == "refused" and real.data == data, f"the reference itself: {real}"
    assert not real.differences(fault), f"crash data={data} through the proxy differs from a real kill -9: " \
                                         f"{real.differences(fault)}"
    assert_keeps_contract(fault, build("crash", "redis", handle, data=data).view())


def test_down_looks_to_redis_py_like_a_dead_server(stack, handle, injector, tmp_path):
    real = real_redis_crash(tmp_path, "aof")
    fault = faulted_redis(stack, injector, handle, "down")
    assert not real.differences(fault), real.differences(fault)
    assert_keeps_contract(fault, build("down", "redis", handle).view())


def test_negative_control_accept_then_close_is_caught(stack, handle, tmp_path):
    """The crash as it used to be: the server killed, its proxies left listening."""
    real = real_redis_crash(tmp_path, "aof")
    probe = RedisProbe(via_proxy(stack, "redis"))
    stack.crash_dependency("redis")
    try:
        during = probe.during()
    finally:
        stack.restart_dependency("redis")
    old = view(during, probe.after())
    differences = real.differences(old)
    assert old.new_socket == "accepted, then closed", old
    assert any(d.startswith("new_socket") for d in differences), differences
    assert any(d.startswith("client_new") for d in differences), \
        f"redis-py must see the difference too (a refused connect vs. a closed connection): {differences}"


def test_postgres_crash_looks_to_asyncpg_like_a_real_kill_9(stack, handle, injector, loop):
    # The reference: the stack's own Postgres, killed by hand, asyncpg connected to it directly.
    probe = PostgresProbe(stack.postgres.url, loop)
    kill_9(stack.postgres.pid)
    stack.postgres.proc.stop()  # reap it
    during = probe.during()
    stack.restart_dependency("postgres")
    real = view(during, probe.after())
    assert real.new_socket == "refused" and real.data == "kept", f"the reference itself: {real}"

    probe = PostgresProbe(via_proxy(stack, "postgres"), loop)
    injection = injector.inject(build("crash", "postgres", handle))
    try:
        during = probe.during()
    finally:
        assert injector.heal(injection).outcome == "ok"
    fault = view(during, probe.after())
    assert not real.differences(fault), f"crash through the proxy differs from a real kill -9: " \
                                         f"{real.differences(fault)}"
    assert_keeps_contract(fault, build("crash", "postgres", handle).view())

    # Negative control: the server killed behind proxies that still listen.
    probe = PostgresProbe(via_proxy(stack, "postgres"), loop)
    stack.crash_dependency("postgres")
    try:
        during = probe.during()
    finally:
        stack.restart_dependency("postgres")
    old = view(during, probe.after())
    assert {d.split(":")[0] for d in real.differences(old)} >= {"new_socket", "client_new"}, old


@contextlib.contextmanager
def packets_dropped(port: int):
    """A real network blackhole in front of a loopback port: every packet to it vanishes."""
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP",
            "-m", "comment", "--comment", f"gauntlet-test-blackhole-{port}"]
    if os.geteuid() != 0 or not shutil.which("iptables"):
        pytest.skip("the real blackhole to compare with needs iptables as root")
    added = subprocess.run(["iptables", "-w", "5", "-I", *rule], capture_output=True, text=True, timeout=15)
    if added.returncode != 0:
        pytest.skip(f"iptables cannot add a rule here: {added.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["iptables", "-w", "5", "-D", *rule], capture_output=True, timeout=15, check=True)


def test_blackhole_looks_to_redis_py_like_packets_dropped_by_the_network(stack, handle, injector, tmp_path):
    server = RedisServer(tmp_path / "redis", free_port(), tmp_path / "redis.log")
    try:
        server.start(time.monotonic() + 10)
        probe = RedisProbe(server.url)
        with packets_dropped(server.port):
            during = probe.during()
        real = view(during, probe.after())
    finally:
        server.stop()
    assert real.new_socket == "hang" and real.open_socket == "hang", f"the reference itself: {real}"

    fault = faulted_redis(stack, injector, handle, "blackhole")
    assert not real.differences(fault), f"blackhole through the proxy differs from dropped packets: " \
                                        f"{real.differences(fault)}"
    assert_keeps_contract(fault, build("blackhole", "redis", handle).view())

    # Negative control: the blackhole as Toxiproxy alone makes it (a timeout toxic, the
    # listener still accepting): a new connection is accepted, then hangs.
    address = host_port(via_proxy(stack, "redis"))
    client = ToxiproxyClient(stack.proxy.api_url)
    client.add_toxic("redis-r1", "timeout", {"timeout": 0}, name="old-blackhole", stream="upstream")
    try:
        old_new_socket = new_socket_outcome(address, REDIS_HELLO)
    finally:
        client.remove_toxic("redis-r1", "old-blackhole")
    assert old_new_socket == "accepted, then hang" != real.new_socket
