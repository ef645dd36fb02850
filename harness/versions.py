"""Versions of everything a run used, for run.json and the report's metadata."""

from __future__ import annotations

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


def collect_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("gauntlet", "locust", "websockets", "uvicorn", "starlette", "asyncpg", "redis", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        versions["postgres"] = _first_line([str(postgres_bindir() / "postgres"), "--version"])
        versions["redis-server"] = _first_line([which("redis-server", "redis-server"), "--version"])
        versions["nginx"] = _first_line([which("nginx", "nginx"), "-v"])
    except MissingServerError as exc:
        versions["servers"] = str(exc)
    return versions
