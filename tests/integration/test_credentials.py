"""Postgres and Redis under test need the credentials the harness generated, and only
the app gets them (through its URLs); nginx workers do not run as root; a body too
large for the load balancer gets the same JSON error as one too large for the app."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
import redis

from harness.ports import LOOPBACK

pytestmark = pytest.mark.integration


def _pg_connect(**kwargs) -> str:
    async def go() -> str:
        conn = await asyncpg.connect(host=LOOPBACK, database="gauntlet", user="gauntlet", timeout=5, **kwargs)
        try:
            return str(await conn.fetchval("SELECT current_user"))
        finally:
            await conn.close()
    return asyncio.run(go())


def test_postgres_refuses_every_connection_without_the_generated_password(postgres_server):
    port = postgres_server.port
    with pytest.raises(asyncpg.InvalidPasswordError):
        _pg_connect(port=port, password="wrong")
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        _pg_connect(port=port, password="")
    # The local socket, the way another local account would try: no trust there either.
    done = subprocess.run(
        [str(postgres_server.bindir / "psql"), "-h", str(postgres_server.root), "-p", str(port), "-U", "gauntlet",
         "-d", "gauntlet", "-w", "-c", "SELECT 1"],
        capture_output=True, text=True, timeout=10, env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"})
    assert done.returncode != 0 and "password" in done.stderr, done.stderr
    assert _pg_connect(port=port, password=postgres_server.password) == "gauntlet"
    assert urlsplit(postgres_server.url).password == postgres_server.password


def test_redis_refuses_commands_without_the_generated_password(redis_server):
    with socket.create_connection((LOOPBACK, redis_server.port), timeout=2) as sock:
        sock.sendall(b"GET anything\r\n")
        assert sock.recv(128).startswith(b"-NOAUTH")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port, password="wrong", socket_timeout=2).ping()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_the_app_gets_credentials_only_through_its_urls(stack_factory):
    stack = stack_factory(replicas=2, broker="redis")
    state = stack.state()
    passwords = {stack.postgres.password, stack.redis.password}
    assert all(len(p) >= 32 for p in passwords)
    for replica in state.replicas:
        # Through the replica's own fault proxies, with the credentials in the URL.
        assert urlsplit(replica.database_url).password == stack.postgres.password
        assert urlsplit(replica.redis_url).password == stack.redis.password
        with urllib.request.urlopen(replica.url + "/api/ready", timeout=5) as resp:
            assert json.load(resp)["status"] == "ready"
    # No password on any command line (every local user can read those).
    for server in [stack.postgres, stack.redis, stack.nginx, stack.proxy, *stack.replicas.values()]:
        proc = psutil.Process(server.pid)
        for p in [proc, *proc.children(recursive=True)]:
            line = " ".join(p.cmdline())
            assert not [pw for pw in passwords if pw in line], f"a password on the command line of {line[:80]}"
    master = psutil.Process(stack.nginx.pid)
    workers = master.children()
    assert workers and all(w.username() != "root" for w in workers), [w.username() for w in workers]


def test_a_body_too_large_gets_the_same_json_error_from_the_lb_and_from_the_app(stack_factory):
    stack = stack_factory(replicas=1, broker="redis", fault_proxies=False)
    state = stack.state()
    bodies = {}
    for size in (2 * 1024 * 1024, 300 * 1024):  # above the LB's 1 MiB, above the SUT's 256 KiB
        req = urllib.request.Request(state.lb_url + "/api/notifications", data=b"x" * size, method="POST",
                                     headers={"Authorization": f"Bearer {state.publisher_key}",
                                              "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 413
        assert err.value.headers.get("Content-Type", "").startswith("application/json")
        bodies[size] = json.loads(err.value.read())
    assert [set(b) for b in bodies.values()] == [{"error"}, {"error"}]
    assert all(b["error"].startswith("body is larger than ") for b in bodies.values()), bodies
