"""Changes made while connections are open: toxics take effect on them, removing or
updating a toxic never loses data already read, disabling a proxy takes it down."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time

import pytest
from proxy_support import nothing_arrives, recv_exactly, recv_until_closed, round_trip

from chaos.toxiproxy_client import ToxiproxyClient


def test_toxic_added_on_an_open_connection_takes_effect(api: ToxiproxyClient, echo_proxy, dial):
    sock = dial(echo_proxy)
    assert round_trip(sock) < 0.1
    api.add_toxic(echo_proxy.name, "latency", {"latency": 200}, stream="upstream")
    assert round_trip(sock) >= 0.2
    api.remove_toxic(echo_proxy.name, "latency_upstream")
    assert round_trip(sock) < 0.1


def test_updating_a_toxic_changes_open_connections(api, echo_proxy, dial):
    sock = dial(echo_proxy)
    api.add_toxic(echo_proxy.name, "latency", {"latency": 100})
    assert 0.1 <= round_trip(sock) < 0.25
    updated = api.update_toxic(echo_proxy.name, "latency_downstream", {"latency": 300})
    assert updated.attributes == {"latency": 300, "jitter": 0}
    assert round_trip(sock) >= 0.3


def test_removing_latency_releases_queued_chunks_in_order(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "latency", {"latency": 2000})
    sock = dial(echo_proxy)
    messages = [f"message-{i:02d};".encode() for i in range(10)]
    for message in messages:
        sock.sendall(message)
        time.sleep(0.01)
    assert nothing_arrives(sock, 0.2)
    started = time.monotonic()
    api.remove_toxic(echo_proxy.name, "latency_downstream")
    expected = b"".join(messages)
    assert recv_exactly(sock, len(expected), timeout=2) == expected
    assert time.monotonic() - started < 1, "queued chunks should leave as soon as the toxic is gone"


def test_removing_toxics_mid_stream_drops_no_data(api, echo_proxy, dial):
    """Stream 8 MB through the echo server while toxics come and go on both streams;
    what comes back must be exactly what was sent."""
    sock = dial(echo_proxy, timeout=20)
    rng = random.Random(42)
    payload = rng.randbytes(8 * 1024 * 1024)
    received = bytearray()
    errors: list[BaseException] = []
    done = threading.Event()

    def send() -> None:
        try:
            view = memoryview(payload)
            for offset in range(0, len(view), 16384):
                sock.sendall(view[offset:offset + 16384])
                time.sleep(0.003)  # spread the stream (about 1.5 s) over the toxic changes
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def receive() -> None:
        try:
            received.extend(recv_exactly(sock, len(payload), timeout=30))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=send, daemon=True), threading.Thread(target=receive, daemon=True)]
    for thread in threads:
        thread.start()
    toxics = [
        ("latency", {"latency": 20, "jitter": 10}),
        ("slicer", {"average_size": 4096, "size_variation": 1024, "delay": 100}),
        ("bandwidth", {"rate": 20000}),
        ("noop", {}),
    ]
    changes = 0
    try:
        while not done.is_set() and changes < 200:
            kind, attributes = rng.choice(toxics)
            stream = rng.choice(["upstream", "downstream"])
            name = f"{kind}_{stream}"
            if any(t.name == name for t in api.toxics(echo_proxy.name)):
                api.remove_toxic(echo_proxy.name, name)
            else:
                api.add_toxic(echo_proxy.name, kind, attributes, stream=stream)
            changes += 1
            time.sleep(rng.uniform(0.005, 0.03))
        api.reset()  # whatever is left goes, the stream must still complete
    finally:
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert changes >= 30, "the stream ended before the toxics could change"
    assert len(received) == len(payload)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_disabled_proxy_refuses_connections_and_enabling_restores(api, echo_proxy, dial):
    sock = dial(echo_proxy)
    assert round_trip(sock) < 0.5
    down = api.disable(echo_proxy.name)
    assert down.enabled is False
    try:
        assert recv_until_closed(sock, timeout=2) == b""
    except ConnectionResetError:
        pass  # also a closed connection
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", echo_proxy.listen_port), timeout=2).close()
    up = api.enable(echo_proxy.name)
    assert up.enabled is True
    assert up.listen == echo_proxy.listen, "re-enabled proxy listens on the same port"
    assert round_trip(dial(echo_proxy)) < 0.5


def test_reset_reenables_and_clears_toxics_on_open_connections(api, echo_proxy, dial, echo_server):
    other = api.create_proxy(f"{echo_proxy.name}-other", upstream=echo_server.address)
    api.disable(other.name)
    sock = dial(echo_proxy)
    api.add_toxic(echo_proxy.name, "latency", {"latency": 300})
    assert round_trip(sock) >= 0.3
    api.reset()
    assert round_trip(sock) < 0.1
    assert api.get_proxy(other.name).enabled is True
    assert api.toxics(echo_proxy.name) == []
    assert round_trip(dial(other)) < 0.5


def test_deleting_a_proxy_closes_its_connections(api, echo_proxy, dial):
    sock = dial(echo_proxy)
    assert round_trip(sock) < 0.5
    api.delete_proxy(echo_proxy.name)
    try:
        assert recv_until_closed(sock, timeout=2) == b""
    except ConnectionResetError:
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", echo_proxy.listen_port), timeout=2).close()


def test_unreachable_upstream_closes_the_client(api, dial):
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = placeholder.getsockname()[1]  # bound, never listening: connection refused
        proxy = api.create_proxy("dead-upstream", upstream=f"127.0.0.1:{dead}")
        sock = dial(proxy)
        assert recv_until_closed(sock, timeout=3) == b""


def test_removing_a_timeout_spares_connections_it_did_not_apply_to(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "timeout", {"timeout": 0}, toxicity=0.0)
    sock = dial(echo_proxy)
    assert round_trip(sock) < 0.5  # toxicity 0: the black hole never applied here
    api.remove_toxic(echo_proxy.name, "timeout_downstream")
    assert round_trip(sock) < 0.5
