"""Versions of everything a run used, for run.json and the report's metadata."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata

from harness.servers.base import MissingServerError, which
from harness.servers.postgres import postgres_bindir


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "unknown"


@functools.lru_cache(maxsize=1)
def _server_versions() -> tuple[tuple[str, str], ...]:
    # Three subprocesses: asked once per process, not once per run (compare runs many).
    found = []
    for name, argv in (("postgres", lambda: [str(postgres_bindir() / "postgres"), "--version"]),
                       ("redis-server", lambda: [which("redis-server", "redis-server"), "--version"]),
                       ("nginx", lambda: [which("nginx", "nginx"), "-v"])):
        try:
            found.append((name, _first_line(argv())))
        except MissingServerError as exc:
            found.append((name, f"missing: {exc}"))
    return tuple(found)


def collect_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("gauntlet", "locust", "websockets", "uvicorn", "starlette", "asyncpg", "redis", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions.update(_server_versions())
    return versions
