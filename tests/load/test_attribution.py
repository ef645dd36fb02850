"""Replica attribution for an app that never names itself (tests/apps/plain_ws_app.py:
no welcome frame, no instance in frames, acks or headers), through the harness's real
nginx: the load balancer's `X-Gauntlet-Replica` header is the only source, on the
WebSocket 101 and on every publish response.

- through the harness's load balancer the matrix and the same/cross split name every
  replica;
- with `--host` to a plain nginx of our own that does not add the header, the report
  says "replica attribution unavailable" in one line instead of a `?` matrix;
- negative control: the same harness stack with the header dropped from its nginx
  config loses the attribution, so the first test would fail if the header went away.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest
from load_support import run_locust

from harness.config import AppSpec
from harness.ports import free_port
from harness.servers.base import which
from harness.spec import StackSpec
from harness.stack import LocalStack
from common.state import REPLICA_HEADER
from reports import attribution as report_attribution
from reports.delivery import analyze
from reports.records import load_run
from reports.verdict import evaluate_run
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.integration

PLAIN = AppSpec(command="{python} tests/apps/plain_ws_app.py --listen {port} --instance {instance}",
                env={"PLAIN_REDIS": "{redis_url}"}, health_path="/healthz", ready_path=None, cwd=str(ROOT),
                is_reference=False)
CONFIG = textwrap.dedent("""
    [load]
    adapter = "jsonws"
    [load.jsonws]
    ws_url = "{ws_base}/ws?user={user}"
    key_path = "data.key"
    sent_ts_path = "data.sent_ts"
    publish_url = "/publish"
    publish_body = { user = "{user}", data = "{data}" }
    broadcast_url = "/broadcast"
    broadcast_body = { data = "{data}" }
    headers = {}
""")
LOAD = ["--headless", "-t", "8s", "--stages", "2s:24,30s:24", "--publish-rate", "8", "--user-pool", "12",
        "--broadcast-ratio", "0.2", "--seed", "3", "--only-summary"]


@pytest.fixture(scope="module")
def plain_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("plain")
    stack = LocalStack(StackSpec(replicas=3, broker="redis", app=PLAIN, runs_dir=base / "runs",
                                 state_path=base / "stack.json", fault_proxies=False))
    try:
        stack.up()
        yield stack, base / "stack.json"
    finally:
        stack.down()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gauntlet.toml"
    path.write_text(CONFIG)
    return path


def _run(tmp_path: Path, state: Path, *extra: str):
    result = run_locust([*LOAD, "--gauntlet-config", str(_config(tmp_path)), *extra], tmp_path,
                        {"GAUNTLET_STATE": str(state)})
    assert "Traceback" not in result.log, result.log[-4000:]
    assert result.returncode == 0, result.log[-4000:]
    return result


def test_the_header_is_the_only_name_and_it_is_on_the_101_and_every_response(plain_stack):
    from scenarios.adapters.wsconn import open_ws

    stack, _ = plain_stack
    state = stack.state()
    every = {"r1", "r2", "r3"}
    seen_http, seen_ws = set(), set()
    # Each nginx worker keeps its own round-robin position, so a few more tries than
    # replicas may be needed before every one has answered.
    for _ in range(30):
        with urllib.request.urlopen(urllib.request.Request(
                state.lb_url + "/publish", data=b'{"user":"u1","data":{}}', method="POST",
                headers={"Content-Type": "application/json"}), timeout=5) as resp:
            assert resp.status == 202 and "instance" not in resp.read().decode()
            seen_http.add(resp.headers[REPLICA_HEADER])
        if seen_http == every:
            break
    for _ in range(30):
        ws = open_ws(state.ws_url + "?user=u1", 5)
        try:
            assert ws.headers["Upgrade"].lower() == "websocket"
            seen_ws.add(ws.replica)
        finally:
            ws.close()
        if seen_ws == every:
            break
    assert seen_http == seen_ws == every
    assert report_attribution.REPLICA_HEADER == REPLICA_HEADER


def test_the_matrix_names_every_replica_for_an_app_without_a_welcome_frame(plain_stack, tmp_path):
    stack, state = plain_stack
    result = _run(tmp_path, state)
    run = load_run(result.run_dir)
    connects = run.conn[run.conn["event"] == "connect"]
    assert set(connects["instance"].astype(str)) == {"r1", "r2", "r3"}
    ok = run.pub[run.pub["outcome"] == "ok"]
    assert len(ok) >= 100 and ok["instance"].notna().all()
    assert set(ok["instance"].astype(str)) == {"r1", "r2", "r3"}
    assert set(run.recv["instance"].astype(str)) == {"r1", "r2", "r3"}
    assert set(run.http["instance"].dropna().astype(str)) == {"r1", "r2", "r3"}

    a = analyze(run)
    assert a.attribution.available and a.attribution.note is None
    pairs = {(str(o), str(s)) for o, s in zip(a.matrix["origin"], a.matrix["sub_instance"])}
    every = {(o, s) for o in ("r1", "r2", "r3") for s in ("r1", "r2", "r3")}
    assert every <= pairs, f"missing pairs {every - pairs}"
    assert not any("?" in p for p in pairs)
    paths = a.latency["path"].astype(str).value_counts()
    assert paths.get("same", 0) > 20 and paths.get("cross", 0) > 40 and paths.get("unknown", 0) == 0

    verdict = evaluate_run(result.run_dir)
    summary = json.loads(verdict.summary_path.read_text())
    assert summary["delivery"]["attribution"]["available"] is True
    assert not any("attribution" in n for n in summary["delivery"]["notes"])


def _plain_nginx(root: Path, port: int, upstream_ports: list[int]) -> str:
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstream_ports)
    user = "user root;\n"
    return f"""{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream app {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""


def test_with_host_to_a_plain_load_balancer_the_report_says_attribution_is_unavailable(plain_stack, tmp_path):
    """The user's own nginx in front of the same replicas: no header, so no names."""
    stack, state = plain_stack
    root = tmp_path / "user-nginx"
    root.mkdir()
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(_plain_nginx(root, port, [r.port for r in stack.replicas.values()]))
    log = open(root / "nginx.log", "wb")
    proc = subprocess.Popen([which("nginx", "nginx"), "-c", str(conf), "-p", str(root)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answering() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                return True
            except OSError:
                return False

        wait_for(answering, 10, "the plain nginx")
        result = _run(tmp_path, state, "--host", f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    run = load_run(result.run_dir)
    assert len(run.pub) >= 100 and run.conn["instance"].isna().all() and run.pub["instance"].isna().all()

    from reports.html import report_run

    verdict, report = report_run(result.run_dir)
    delivery = next(c for c in verdict.checks if c.name == "delivery")
    assert "replica attribution unavailable: none of" in delivery.summary
    summary = json.loads(verdict.summary_path.read_text())
    notes = [n for n in summary["delivery"]["notes"] if n.startswith("replica attribution unavailable")]
    assert len(notes) == 1 and "X-Gauntlet-Replica" in notes[0]
    assert summary["delivery"]["attribution"]["available"] is False
    html = report.read_text()
    assert "replica attribution unavailable: none of" in html
    assert "cross-instance delivery matrix" not in html, "no heatmap of ? when nothing is named"
    # The loss counts still hold without names: a healthy app loses nothing.
    assert summary["delivery"]["counts"]["lost_eventual"] == 0


def test_negative_control_without_the_header_the_names_are_gone(plain_stack, tmp_path):
    """Drop the header from the harness's own nginx (a mutant config, reloaded for real):
    the records lose the replica, which is what the first test would then catch."""
    stack, state = plain_stack
    nginx = stack.nginx
    original = nginx.conf.read_text()
    mutant = "\n".join(line for line in original.splitlines() if f"add_header {REPLICA_HEADER}" not in line)
    assert mutant != original

    from harness.servers import nginx as nginx_module

    real = nginx_module.render_config
    nginx_module.render_config = lambda *a, **k: mutant
    try:
        with stack.lock:
            nginx.reload(stack._upstreams())
        result = _run(tmp_path, state)
    finally:
        nginx_module.render_config = real
        with stack.lock:
            nginx.reload(stack._upstreams())
    run = load_run(result.run_dir)
    assert run.conn["instance"].isna().all() and run.pub["instance"].isna().all()
    a = analyze(run)
    assert not a.attribution.available
    assert a.attribution.note.startswith("replica attribution unavailable: none of")
    assert set(a.matrix["origin"].astype(str)) == {"?"}
    # And the header is back after the reload with the real config.
    with urllib.request.urlopen(stack.state().lb_url + "/healthz", timeout=5) as resp:
        assert resp.headers[REPLICA_HEADER] in {"r1", "r2", "r3"}


def test_a_retried_request_names_the_replica_that_answered(plain_stack):
    """r3 dead: nginx tries it, gets refused, retries on the next; the header names the
    one that answered (the last address of X-Upstream), never the refused one. With every
    replica dead nginx answers 502 itself, naming nobody."""
    import time

    stack, _ = plain_stack
    lb = stack.state().lb_url
    ports = {f"127.0.0.1:{r.port}": n for n, r in stack.replicas.items()}
    try:
        stack.signal_replica("r3", signal.SIGKILL)
        wait_for(lambda: not stack.replica("r3").alive(), 5, "r3 to die")
        retried = []
        deadline = time.monotonic() + 20
        while not retried and time.monotonic() < deadline:
            with urllib.request.urlopen(lb + "/healthz", timeout=5) as resp:
                tried = [a.strip() for a in resp.headers["X-Upstream"].split(",")]
                assert resp.headers[REPLICA_HEADER] == ports[tried[-1]] != "r3"
                if len(tried) > 1:
                    retried.append(tried)
        assert retried and ports[retried[0][0]] == "r3", "a retry after the dead replica was seen"
        for name in ("r1", "r2"):
            stack.signal_replica(name, signal.SIGKILL)
        wait_for(lambda: not any(r.alive() for r in stack.replicas.values()), 5, "every replica to die")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(lb + "/healthz", timeout=5)
        assert info.value.code == 502 and REPLICA_HEADER not in info.value.headers
    finally:
        for name in ("r1", "r2", "r3"):
            stack.revive_replica(name)


@pytest.fixture
def socketio_behind_nginx(tmp_path):
    """Two Socket.IO servers (the apps call themselves io1, io2) behind the harness's
    nginx, which knows them as r1, r2; round robin and ip_hash (sticky, for polling)."""
    import time

    from load_support import SocketIoServer

    from harness.servers.nginx import NginxServer, Upstream

    servers = {"r1": SocketIoServer("io1"), "r2": SocketIoServer("io2")}
    for server in servers.values():
        # A polling client's disconnect waits for its long-poll to return: keep it short.
        server.sio.eio.ping_interval, server.sio.eio.ping_timeout = 1, 2
        server.start()
    upstreams = [Upstream(name, s.port) for name, s in servers.items()]
    lbs = {}
    try:
        for strategy in ("round_robin", "ip_hash"):
            lb = NginxServer(tmp_path / strategy, free_port(), tmp_path, strategy)
            lbs[strategy] = lb
            lb.start(upstreams, time.monotonic() + 15)
        yield servers, {k: v.url for k, v in lbs.items()}
    finally:
        for lb in lbs.values():
            lb.stop()
        for s in servers.values():
            s.stop()


def _holder(servers, user: str) -> str:
    held = [name for name, s in servers.items() if user in s.users.values()]
    assert len(held) == 1, held
    return held[0]


@pytest.mark.parametrize("transports, strategy", [
    (["websocket"], "round_robin"),
    (["polling", "websocket"], "ip_hash"),
    (["polling"], "ip_hash"),
])
def test_socketio_takes_the_replica_from_the_response_that_carried_the_socket(socketio_behind_nginx, transports,
                                                                              strategy):
    from scenarios.adapters import Endpoint, make_adapter

    servers, urls = socketio_behind_nginx
    url = urls[strategy]
    adapter = make_adapter("socketio", Endpoint(url, "", "sekrit", "pk"), {"transports": transports})
    seen = set()
    for i in range(4 if strategy == "round_robin" else 1):
        user = f"u-{'-'.join(transports)}-{i}"
        conn = adapter.connect(user, timeout=5)
        try:
            assert conn.welcome.instance == _holder(servers, user), "the replica holding the session"
            assert conn._sio.eio.current_transport == transports[-1]
            seen.add(conn.welcome.instance)
        finally:
            conn.close()
    if strategy == "round_robin":
        assert seen == {"r1", "r2"}
    # The app's own welcome event names it its way, and wins.
    named = make_adapter("socketio", Endpoint(url, "", "sekrit", "pk"),
                         {"transports": transports, "welcome_event": "init"})
    conn = named.connect("u-welcome", timeout=5)
    try:
        assert conn.welcome.instance == {"r1": "io1", "r2": "io2"}[_holder(servers, "u-welcome")]
    finally:
        conn.close()
