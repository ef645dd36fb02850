"""Each target adapter against a real server of its protocol: a JSON-over-WebSocket
service, a Socket.IO service, and the reference SUT behind the stack's LB."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from load_support import JsonWsServer, SocketIoServer

from scenarios.adapters import AdapterError, ConnectFailed, Disconnected, Endpoint, make_adapter

JSONWS_SETTINGS = {
    "ws_url": "{ws_base}/stream?token={token}",
    "welcome_match": "kind=hello",
    "welcome_instance_path": "server",
    "welcome_last_id_path": "seq",
    "welcome_backlog_path": "recent",
    "message_match": "kind=event",
    "key_path": "payload.key",
    "sent_ts_path": "payload.sent_ts",
    "id_path": "seq",
    "origin_path": "from",
    "user_path": "to",
    "replay_path": "replayed",
    "resume": {"op": "resume", "since": "{after}"},
    "publish_url": "/publish",
    "publish_body": {"to": "{user}", "payload": "{data}"},
    "broadcast_url": "/publish-all",
    "broadcast_body": {"payload": "{data}"},
    "headers": {"Authorization": "Key {publisher_key}"},
    "ack_id_path": "seq",
    "ack_instance_path": "server",
    "ack_instance_header": "X-Served-By",
    "read_paths": ["/items/{item}?user={user}"],
}


def publish(adapter, base_url: str, user: str | None, data: dict):
    """Execute the adapter's publish request over HTTP and read the ack."""
    req = adapter.publish_request(user, data)
    url = req.path if req.path.startswith("http") else base_url + req.path
    http = urllib.request.Request(url, data=json.dumps(req.body).encode(), method=req.method,
                                  headers={"Content-Type": "application/json", **req.headers})
    try:
        with urllib.request.urlopen(http, timeout=5) as resp:
            return adapter.parse_ack(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        return adapter.parse_ack(exc.code, exc.headers, exc.read())


def _watchdog(conn, timeout: float) -> tuple[threading.Timer, threading.Event]:
    """A started timer that aborts `conn` after `timeout` seconds, and the event it sets
    just before the abort, so a Disconnected caused by the abort is always recognised."""
    fired = threading.Event()

    def drop() -> None:
        fired.set()
        conn.abort()

    watchdog = threading.Timer(timeout, drop)
    watchdog.start()
    return watchdog, fired


def receive_delivery(conn, timeout: float = 5.0):
    """Next message frame (skipping non-message frames). A watchdog drops the
    connection at the deadline, so a missing frame fails the test instead of hanging it."""
    watchdog, fired = _watchdog(conn, timeout)
    try:
        while True:
            try:
                d = conn.receive()
            except Disconnected:
                if fired.is_set():
                    raise AssertionError(f"no message frame within {timeout}s") from None
                raise
            if d is not None:
                return d
    finally:
        watchdog.cancel()


def expect_disconnect(conn, timeout: float = 5.0, max_frames: int = 10) -> Disconnected:
    """The Disconnected that ends `conn` within `timeout` seconds and `max_frames` frames.
    A watchdog drops the connection at the deadline so a socket that stays open fails
    the test instead of hanging it; the Disconnected caused by that drop is not accepted."""
    watchdog, fired = _watchdog(conn, timeout)
    try:
        for _ in range(max_frames):
            try:
                conn.receive()
            except Disconnected as exc:
                if fired.is_set():
                    raise AssertionError(f"connection still open after {timeout}s") from None
                return exc
        raise AssertionError(f"still connected after {max_frames} frames")
    finally:
        watchdog.cancel()


@pytest.fixture
def jsonws_server():
    server = JsonWsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def socketio_server():
    server = SocketIoServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_jsonws_adapter_connects_receives_publishes_and_resumes(jsonws_server):
    url = jsonws_server.url
    adapter = make_adapter("jsonws", Endpoint(url, url.replace("http", "ws") + "/ws", "sekrit", "pk"),
                           JSONWS_SETTINGS)
    conn = adapter.connect("u1", timeout=5)
    try:
        assert conn.welcome.instance == "s1" and conn.welcome.last_id == 0
        ack = publish(adapter, url, "u1", {"key": "w0-1", "sent_ts": 1234.5})
        assert (ack.ok, ack.id, ack.instance) == (True, 1, "s1")
        d = receive_delivery(conn)
        assert (d.key, d.sent_ts, d.id, d.origin, d.user, d.replay) == ("w0-1", 1234.5, 1, "s1", "u1", False)

        ack = publish(adapter, url, None, {"key": "w0-2", "sent_ts": 1235.0})
        assert (ack.ok, ack.id, ack.instance) == (True, 2, "s1"), "instance from the header when the body lacks it"
        d = receive_delivery(conn)
        assert (d.key, d.user) == ("w0-2", None)

        assert conn.resume(0) is True
        replayed = [receive_delivery(conn), receive_delivery(conn)]
        assert [(r.key, r.replay) for r in replayed] == [("w0-1", True), ("w0-2", True)]
        assert jsonws_server.resumes == [("u1", 0)]
        again = adapter.connect("u1", timeout=5)
        try:  # the welcome's backlog: what the server says was recent, marked as replays
            assert [(d.key, d.id, d.replay) for d in again.welcome.backlog] == [("w0-1", 1, True), ("w0-2", 2, True)]
            assert again.welcome.last_id == 2
        finally:
            again.close()

        jsonws_server.call(jsonws_server.drop_all)
        assert expect_disconnect(conn).code == 1012
    finally:
        conn.close()
    conn.close()  # twice is fine


def test_jsonws_adapter_reports_rejections_and_refusals(jsonws_server):
    url = jsonws_server.url
    adapter = make_adapter("jsonws", Endpoint(url, url.replace("http", "ws"), "", "wrong"), JSONWS_SETTINGS)
    ack = publish(adapter, url, "u1", {"key": "k"})
    assert ack.ok is False and ack.error == "HTTP 401"
    closed = make_adapter("jsonws", Endpoint("http://127.0.0.1:9", "ws://127.0.0.1:9", "", ""), JSONWS_SETTINGS)
    with pytest.raises(ConnectFailed, match="connect failed"):
        closed.connect("u1", timeout=2)
    assert adapter.read_requests("u3", 7)[0].path == "/items/7?user=u3"


@pytest.mark.parametrize("settings, message", [
    ({"ws_url": "{ws_base}/x?t={tok}"}, "unknown placeholder {tok}"),
    ({"bogus": 1}, "unknown setting 'bogus'"),
    ({"key_path": "a..b"}, "cannot parse JSON path"),
    ({"message_match": "kind"}, "expected <json path>=<value>"),
    ({"headers": {"A": 1}}, "headers must be a table of strings"),
    ({"publish_body": {"to": "{who}"}}, "unknown placeholder {who}"),
])
def test_jsonws_settings_errors_name_the_setting(settings, message):
    with pytest.raises(AdapterError, match=message.replace("{", r"\{").replace("}", r"\}").replace("[", r"\[")):
        make_adapter("jsonws", Endpoint("http://127.0.0.1:1", "ws://127.0.0.1:1", "", ""), settings)


def test_unknown_adapter_lists_the_known_ones():
    with pytest.raises(AdapterError, match="unknown adapter 'mqtt'; known: reference, jsonws, socketio"):
        make_adapter("mqtt", Endpoint("http://127.0.0.1:1", "ws://127.0.0.1:1"), {})


def test_socketio_adapter_connects_receives_and_resumes(socketio_server):
    url = socketio_server.url
    settings = {"welcome_event": "init", "resume_event": "resume"}
    adapter = make_adapter("socketio", Endpoint(url, "", "sekrit", "pk"), settings)
    conn = adapter.connect("u7", timeout=5)
    try:
        assert conn.welcome.instance == "io1" and conn.welcome.last_id == 0
        ack = publish(adapter, url, "u7", {"key": "w1-5", "sent_ts": 99.5})
        assert (ack.ok, ack.id, ack.instance) == (True, 1, "io1")
        publish(adapter, url, "u8", {"key": "w1-6", "sent_ts": 99.6})  # another user's: not for us
        publish(adapter, url, "u7", {"key": "w1-7", "sent_ts": 99.7})
        got = [receive_delivery(conn), receive_delivery(conn)]
        assert [(d.key, d.id, d.origin, d.user, d.replay) for d in got] == [
            ("w1-5", 1, "io1", "u7", False), ("w1-7", 3, "io1", "u7", False)]
        assert got[0].sent_ts == 99.5
        assert conn.resume(1) is True
        d = receive_delivery(conn)
        assert (d.key, d.replay) == ("w1-7", True)
        socketio_server.call(socketio_server.drop_all)
        expect_disconnect(conn)
    finally:
        conn.close()


def test_socketio_adapter_refused_connection_is_a_connect_failure(socketio_server):
    adapter = make_adapter("socketio", Endpoint(socketio_server.url, "", "", ""), {"auth": {"token": ""}})
    with pytest.raises(ConnectFailed, match="socket.io connect failed"):
        adapter.connect("u1", timeout=3)


def test_reference_adapter_against_the_reference_sut(load_stack):
    stack, _ = load_stack
    state = stack.state()
    endpoint = Endpoint(state.lb_url, state.ws_url, state.secret, state.publisher_key)
    adapter = make_adapter("reference", endpoint, {})
    conns = [adapter.connect("u-adapter", timeout=5) for _ in range(4)]
    try:
        instances = {c.welcome.instance for c in conns}
        assert instances <= {r.name for r in state.replicas} and len(instances) == 2, instances
        assert all(isinstance(c.welcome.last_id, int) for c in conns)
        key = f"adapter-{time.time()}"
        ack = publish(adapter, state.lb_url, "u-adapter", {"key": key, "sent_ts": 42.0})
        assert ack.ok and isinstance(ack.id, int) and ack.instance in instances
        for c in conns:  # same-instance and cross-instance fan-out
            d = receive_delivery(c)
            assert (d.key, d.sent_ts, d.id, d.origin, d.user, d.replay) == (
                key, 42.0, ack.id, ack.instance, "u-adapter", False)
        # Missed while away: the 20 newest come in the init frame (the welcome backlog),
        # older ones by resume; the SUT never sends a socket an id twice.
        user = f"u-resume-{int(time.time() * 1000)}"
        acks = [publish(adapter, state.lb_url, user, {"key": f"r{i}", "sent_ts": 1.0 + i}) for i in range(23)]
        assert all(a.ok for a in acks)
        conns.append(adapter.connect(user, timeout=5))
        backlog = conns[-1].welcome.backlog
        assert [d.key for d in backlog] == [f"r{i}" for i in range(3, 23)]
        assert all(d.replay and d.user == user for d in backlog)
        assert conns[-1].resume(acks[0].id - 1) is True
        replayed = [receive_delivery(conns[-1]) for _ in range(3)]
        assert [(d.key, d.replay) for d in replayed] == [("r0", True), ("r1", True), ("r2", True)]
        bad = publish(make_adapter("reference", Endpoint(state.lb_url, state.ws_url, state.secret, "nope"), {}),
                      state.lb_url, "u-adapter", {"key": "x"})
        assert bad.ok is False and bad.error == "HTTP 401" and bad.instance in instances
    finally:
        for c in conns:
            c.close()
    wrong = make_adapter("reference", Endpoint(state.lb_url, state.ws_url, "not-the-secret", ""), {})
    with pytest.raises(ConnectFailed) as info:
        wrong.connect("u1", timeout=5)
    assert info.value.code == 4401 and info.value.reason == "bad token"


# -- on-connect actions: subscribing the way real apps do --------------------------------

SUBSCRIBE_SIO = {"on_connect": [{"emit": "subscribe", "args": ["{user}"], "ack": True, "ack_match": "ok=true"}]}


@pytest.fixture
def rooms_server():
    server = SocketIoServer(rooms_by_event=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_socketio_subscribes_by_an_acked_emit_and_receives_its_room(rooms_server):
    url = rooms_server.url
    adapter = make_adapter("socketio", Endpoint(url, "", "", "pk"), SUBSCRIBE_SIO)
    conn = adapter.connect("u7", timeout=5)
    try:
        assert rooms_server.subscribed == [("u7",)], "the {user} placeholder is the emit's argument"
        publish(adapter, url, "u7", {"key": "r-1", "sent_ts": 1.0})
        assert receive_delivery(conn).key == "r-1"
    finally:
        conn.close()
    # Negative control: without the emit the socket joins no room and receives nothing.
    bare = make_adapter("socketio", Endpoint(url, "", "", "pk"), {})
    conn = bare.connect("u8", timeout=5)
    try:
        publish(bare, url, "u8", {"key": "r-2", "sent_ts": 1.0})
        with pytest.raises(AssertionError, match="no message frame"):
            receive_delivery(conn, timeout=1.0)
    finally:
        conn.close()


def test_socketio_negative_or_missing_ack_is_a_connect_failure(rooms_server):
    url = rooms_server.url
    adapter = make_adapter("socketio", Endpoint(url, "", "", "pk"), SUBSCRIBE_SIO)
    with pytest.raises(ConnectFailed, match="negative ack to 'subscribe'"):
        adapter.connect("banned", timeout=5)
    # Without ack_match the usual {error} shape is the refusal.
    plain = make_adapter("socketio", Endpoint(url, "", "", "pk"),
                         {"on_connect": [{"emit": "subscribe", "args": ["{user}"], "ack": True}]})
    with pytest.raises(ConnectFailed, match="negative ack"):
        plain.connect("banned", timeout=5)
    waiting = make_adapter("socketio", Endpoint(url, "", "", "pk"),
                           {"on_connect": [{"emit": "subscribe", "args": ["{user}"], "ack": True, "timeout": "0.5s"}]})
    t0 = time.monotonic()
    with pytest.raises(ConnectFailed, match="no ack to 'subscribe' within 0.5s"):
        waiting.connect("mute", timeout=10)
    assert time.monotonic() - t0 < 3, "the ack deadline, not the connect timeout, applies"


def test_socketio_emit_without_ack_and_with_several_arguments(rooms_server):
    url = rooms_server.url
    adapter = make_adapter("socketio", Endpoint(url, "", "", "pk"),
                           {"on_connect": [{"emit": "subscribe", "args": ["{user}", {"as": "{token}"}]}]})
    conn = adapter.connect("u9", timeout=5)
    try:
        deadline = time.monotonic() + 5
        while not rooms_server.subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rooms_server.subscribed == [("u9", {"as": "u9"})]
    finally:
        conn.close()


@pytest.mark.parametrize("settings, message", [
    ({"on_connect": [{"args": ["x"]}]}, r"on_connect\[0\].emit must name the event"),
    ({"on_connect": [{"emit": "s", "ack": "yes"}]}, r"on_connect\[0\].ack must be true or false"),
    ({"on_connect": [{"emit": "s", "acks": True}]}, r"on_connect\[0\]: unknown key 'acks'; known: emit, args"),
    ({"on_connect": [{"emit": "s", "args": ["{room}"]}]}, r"unknown placeholder \{room\}"),
    ({"on_connect": [{"emit": "s", "ack": True, "timeout": "soon"}]}, r"on_connect\[0\].timeout"),
    ({"on_connect": "subscribe"}, "on_connect must be a list of tables"),
])
def test_socketio_on_connect_settings_are_checked(settings, message):
    with pytest.raises(AdapterError, match=message):
        make_adapter("socketio", Endpoint("http://127.0.0.1:1", "", "", ""), settings)


SUBSCRIBE_WS = {**JSONWS_SETTINGS, "on_connect": [
    {"send": {"op": "sub", "to": "{user}"}, "reply_match": "kind=subbed", "error_match": "kind=error"}]}


def test_jsonws_subscribes_by_a_frame_and_keeps_what_came_before_the_reply(jsonws_server):
    url = jsonws_server.url
    adapter = make_adapter("jsonws", Endpoint(url, url.replace("http", "ws"), "", "pk"), SUBSCRIBE_WS)
    conn = adapter.connect("chan", timeout=5)
    try:
        assert jsonws_server.subscribed == [("chan", "chan")]
        # The server sent an event before its confirmation: it is a message, not lost.
        assert receive_delivery(conn).key == "early"
        publish(adapter, url, "chan", {"key": "w0-1", "sent_ts": 1.0})
        assert receive_delivery(conn).key == "w0-1"
    finally:
        conn.close()


def test_jsonws_refused_or_unanswered_subscription_is_a_connect_failure(jsonws_server):
    url = jsonws_server.url
    adapter = make_adapter("jsonws", Endpoint(url, url.replace("http", "ws"), "", "pk"), SUBSCRIBE_WS)
    with pytest.raises(ConnectFailed, match="refused: .*not allowed"):
        adapter.connect("banned", timeout=5)
    quick = {**SUBSCRIBE_WS, "on_connect": [{**SUBSCRIBE_WS["on_connect"][0], "timeout": "0.5s"}]}
    adapter = make_adapter("jsonws", Endpoint(url, url.replace("http", "ws"), "", "pk"), quick)
    t0 = time.monotonic()
    with pytest.raises(ConnectFailed, match="no reply matching 'subbed' within 0.5s"):
        adapter.connect("mute", timeout=10)
    assert time.monotonic() - t0 < 3
