"""The Docker tests run against a real engine: the daemon DOCKER_HOST names, or else a
private dockerd with its data root in ~/.cache/gauntlet/docker (images persist between
sessions), which this session starts and stops. They skip, with one line, only where
docker.io is not installed."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.docker.docker_support import TIMINGS


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/docker/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client():
    from harness.docker.daemon import DockerUnavailable, SharedDaemon, client_for, docker_host, ping
    from harness.docker.images import LOCAL_BASE, REGISTRY_BASE, build, has_image, make_base

    host = docker_host()
    daemon = None
    if not ping(host):
        if shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            pytest.skip("docker.io is not installed (apt-get install -y docker.io): the Docker tests need a real engine")
        # Shared with other sessions on this machine: the last one out stops it.
        daemon = SharedDaemon()
        try:
            host = daemon.acquire()
        except DockerUnavailable as exc:
            pytest.skip(f"cannot start a private dockerd: {exc}")
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    client = client_for(host, timeout=120)
    try:
        t0 = time.monotonic()
        if not has_image(client, LOCAL_BASE) and not has_image(client, REGISTRY_BASE):
            TIMINGS["base image (debootstrap + import)"] = make_base(client, progress=lambda m: None)
        t0 = time.monotonic()
        build(client, progress=lambda m: None)
        TIMINGS["image builds"] = time.monotonic() - t0
        yield client
    finally:
        client.close()
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        if daemon is not None:
            daemon.release()


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.write_line("docker: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
