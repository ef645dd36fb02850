"""`python -m chaos.proxy` as a process: config file, signals, loopback-only rule, logs."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from proxy_support import REPO, EchoServer, free_port, start_proxy_process, stop_process

from chaos.toxiproxy_client import ToxiproxyClient


def test_config_populates_and_sigterm_exits_zero(tmp_path, echo_server: EchoServer):
    config = tmp_path / "populate.json"
    config.write_text(json.dumps([{"name": "from-config", "upstream": echo_server.address}]))
    handle = start_proxy_process(tmp_path / "proxy.log", "--config", str(config), "--seed", "1")
    try:
        client = ToxiproxyClient(handle.url)
        proxy = client.get_proxy("from-config")
        assert proxy.enabled and proxy.upstream == echo_server.address
        handle.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert handle.process.wait(5) == 0
        assert time.monotonic() - started < 2
    finally:
        stop_process(handle.process)
    log = handle.log.read_text()
    assert "seed=1" in log and "config.loaded" in log and "proxy.populate proxy=from-config" in log
    assert "Traceback" not in log


def test_sigint_with_open_connections_exits_promptly(tmp_path, echo_server: EchoServer):
    handle = start_proxy_process(tmp_path / "proxy.log", "--log-level", "debug")
    try:
        proxy = ToxiproxyClient(handle.url).create_proxy("busy", upstream=echo_server.address)
        with socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=2) as sock:
            sock.sendall(b"hi")
            assert sock.recv(2) == b"hi"
            handle.process.send_signal(signal.SIGINT)
            assert handle.process.wait(5) == 0
            sock.settimeout(2)
            assert sock.recv(1) == b""  # the proxy closed our connection on its way out
    finally:
        stop_process(handle.process)
    log = handle.log.read_text()
    assert "conn.open proxy=busy" in log and "conn.close proxy=busy" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{\"upstream\": \"127.0.0.1:1\"}]", "missing required field: name at proxy 1"),
        ("{not json", "bad request body: invalid JSON"),
        ("[{\"name\": \"x\", \"upstream\": \"127.0.0.1:1\", \"listen\": \"0.0.0.0:0\"}]", "--allow-remote"),
    ],
)
def test_bad_config_fails_fast_with_a_clear_message(tmp_path, content, message):
    config = tmp_path / "bad.json"
    config.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--port", str(free_port()), "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--port", str(free_port()), "--config", str(tmp_path / "nope.json")],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 2 and "cannot read config" in result.stderr


def test_api_refuses_a_non_loopback_host_without_allow_remote():
    result = subprocess.run(
        [sys.executable, "-m", "chaos.proxy", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 2 and "--allow-remote" in result.stderr


def test_allow_remote_permits_wildcard_listen(tmp_path, echo_server: EchoServer):
    handle = start_proxy_process(tmp_path / "proxy.log", "--allow-remote")
    try:
        proxy = ToxiproxyClient(handle.url).create_proxy("wide", upstream=echo_server.address, listen="0.0.0.0:0")
        assert proxy.listen.startswith("0.0.0.0:") and proxy.listen_port > 0
    finally:
        stop_process(handle.process)
