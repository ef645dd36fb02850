"""Shared fixtures: real Postgres and Redis servers, and stacks that always come down."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness.ports import free_port
from harness.servers.postgres import PostgresServer
from harness.servers.redis import RedisServer
from harness.spec import StackSpec
from harness.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent


def pytest_itemcollected(item):
    """With `pytest -n N --dist loadgroup` (make test), a test module runs whole on one
    worker, so its module-scoped stacks and runs are made once; every Docker test shares
    one worker, as they share one private dockerd and its image builds. Marked as each
    item is collected: xdist reads the marks in its own pytest_collection_modifyitems,
    and a conftest implementation of that hook is not sure to run before it."""
    module = item.nodeid.split("::", 1)[0]
    group = "docker" if module.startswith("tests/docker/") else module
    item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def server_tmp():
    path = Path(tempfile.mkdtemp(prefix="gauntlet-test-"))
    path.chmod(0o711)  # the postgres account must reach its own subdirectory
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(server_tmp):
    """A real Postgres (database `gauntlet`, user `gauntlet`, trust auth) for the session."""
    server = PostgresServer(server_tmp / "pg", free_port(), server_tmp / "postgres.log")
    try:
        server.start(time.monotonic() + 30)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(server_tmp):
    """A real Redis for the session."""
    server = RedisServer(server_tmp / "redis", free_port(), server_tmp / "redis.log")
    try:
        server.start(time.monotonic() + 10)
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack_factory(tmp_path):
    """Build LocalStacks that are torn down after the test, even when it fails."""
    stacks: list[LocalStack] = []

    def make(**fields) -> LocalStack:
        fields.setdefault("runs_dir", tmp_path / "runs")
        stack = LocalStack(StackSpec(**fields))
        stacks.append(stack)
        stack.up()
        return stack

    yield make
    for stack in reversed(stacks):
        stack.down()
