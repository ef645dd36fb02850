"""Fixtures for the reference SUT's tests: a fresh database per test on the session's
Postgres, dedicated Postgres/Redis servers for tests that stop them, and replicas
that are always stopped and reaped, even when a test fails."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sut_support import SutFactory

from harness.ports import free_port
from harness.servers.postgres import PostgresServer
from harness.servers.redis import RedisServer

@contextlib.contextmanager
def new_database(server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on `server`, dropped afterwards."""
    name = f"sut_{uuid.uuid4().hex[:10]}"
    server.query(f"CREATE DATABASE {name}")
    try:
        yield server.url.rsplit("/", 1)[0] + "/" + name
    finally:
        server.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_db(postgres_server):
    with new_database(postgres_server) as url:
        yield url


@pytest.fixture
def sut_factory(tmp_path, fresh_db):
    # Depends on fresh_db so the replicas stop before their database is dropped.
    factory = SutFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_db(postgres_server):
    """A database shared by one module's tests (for read-mostly tests of one replica)."""
    with new_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def module_sut_factory(tmp_path_factory, module_db):
    factory = SutFactory(tmp_path_factory.mktemp("replicas"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis for this test alone (the test stops and restarts it)."""
    server = RedisServer(tmp_path / "redis", free_port(), tmp_path / "redis.log")
    try:
        server.start(time.monotonic() + 10)
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_postgres():
    """A Postgres for this test alone (the test stops and restarts it)."""
    root = Path(tempfile.mkdtemp(prefix="sut-pg-"))
    root.chmod(0o711)  # the postgres account must reach its own subdirectory
    server = PostgresServer(root / "pg", free_port(), root / "postgres.log")
    try:
        server.start(time.monotonic() + 30)
        yield server
    finally:
        server.stop()  # the recipe stops Postgres with its fast shutdown
        shutil.rmtree(root, ignore_errors=True)
