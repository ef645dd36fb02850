"""Process lifecycle: graceful shutdown (1001, exit 0, promptly), the ignore-sigterm
defect, starting before the dependencies exist, and bad configuration."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest
from sut_support import ROOT, Subscriber, http, subscribe

from harness.ports import free_port, port_open

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_shutdown_signal_closes_sockets_with_1001_and_exits_0(sut_factory, fresh_db, signum):
    replica = sut_factory.start("r1", broker="postgres", database_url=fresh_db)
    subs = [await subscribe(replica, f"u{i}") for i in range(3)]
    started = time.monotonic()
    replica.signal(signum)
    codes = [await sub.wait_closed(5) for sub in subs]
    assert codes == [1001, 1001, 1001]
    code = await asyncio.to_thread(replica.wait_exit, 10)
    elapsed = time.monotonic() - started
    assert code == 0, replica.log_text()[-2000:]
    assert elapsed < 5, f"shutdown took {elapsed:.1f}s"
    assert not port_open(replica.port)
    assert "Traceback" not in replica.log_text()


async def test_ignore_sigterm_defect_needs_sigkill(sut_factory, fresh_db):
    replica = sut_factory.start("r1", broker="postgres", database_url=fresh_db, defects="ignore-sigterm")
    assert replica.metrics()["defects"] == ["ignore-sigterm"]
    sub = await subscribe(replica, "u1")
    replica.signal(signal.SIGTERM)
    await asyncio.sleep(1.5)
    assert replica.alive()
    assert http(replica.url + "/api/health")[0] == 200
    assert sub.close_code is None
    replica.signal(signal.SIGKILL)
    assert await asyncio.to_thread(replica.wait_exit, 5) == -signal.SIGKILL
    await sub.close()


def test_starts_and_stays_up_without_its_dependencies(sut_factory):
    dead_pg, dead_redis = free_port(), free_port()
    replica = sut_factory.spawn("r1", broker="redis", database_url=f"postgresql://gauntlet@127.0.0.1:{dead_pg}/x",
                                redis_url=f"redis://127.0.0.1:{dead_redis}/0")
    replica.wait_healthy()
    time.sleep(1.0)
    status, headers, body = http(replica.url + "/api/ready", timeout=5)
    assert status == 503 and headers["x-instance"] == "r1"
    assert body == {"status": "unready", "instance": "r1", "failed": ["database", "broker"]}
    started = time.monotonic()
    status, _, body = http(replica.url + "/api/notifications", "POST", {"user": "u", "data": {}},
                           headers={"Authorization": "Bearer test-publisher-key"}, timeout=10)
    assert status == 503 and "database" in body["error"]
    assert time.monotonic() - started < 3
    assert replica.alive()


@pytest.mark.parametrize(("args", "message"), [
    (["--instance", "r1"], "--port is required"),
    (["--port", "http", "--instance", "r1"], "--port must be an integer"),
    (["--port", "1", "--instance", "r1", "--database-url", "postgresql://x/y", "--secret", "s",
      "--publisher-key", "k", "--broker", "kafka"], "--broker 'kafka'"),
    (["--port", "1", "--instance", "r1", "--database-url", "postgresql://x/y", "--secret", "s",
      "--publisher-key", "k", "--broker", "redis"], "--broker redis needs --redis-url"),
    (["--port", "1", "--instance", "r1", "--database-url", "postgresql://x/y", "--secret", "s",
      "--publisher-key", "k", "--defects", "no-catchup,typo"], "unknown defect 'typo'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_config_is_one_line_and_exit_2(args, message):
    done = subprocess.run([sys.executable, "-m", "sut", *args], capture_output=True, text=True, timeout=20,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_taken_port_is_a_clear_error(fresh_db):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sut", "--port", str(port), "--instance", "r1", "--database-url", fresh_db,
             "--secret", "s", "--publisher-key", "k"],
            capture_output=True, text=True, timeout=20, cwd=ROOT,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


async def test_new_sockets_during_shutdown_are_turned_away(sut_factory, fresh_db):
    replica = sut_factory.start("r1", broker="postgres", database_url=fresh_db, extra_args=("--shutdown-timeout", "5"))
    sub = await subscribe(replica, "u1")
    replica.signal(signal.SIGTERM)
    assert await sub.wait_closed(5) == 1001
    try:
        late = await Subscriber(replica.ws_url("u2")).connect(2)
    except OSError:
        pass  # the listener is already closed: turned away as well
    else:
        assert await late.wait_closed(5) in (1001, 1012, 1006)
    assert await asyncio.to_thread(replica.wait_exit, 10) == 0
