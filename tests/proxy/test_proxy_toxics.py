"""Each toxic, measured through the proxy process against a real TCP echo server."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import pytest
from proxy_support import nothing_arrives, recv_exactly, recv_until_closed, round_trip

from chaos.toxiproxy_client import ToxiproxyClient


def test_no_toxic_round_trip_is_fast(echo_proxy, dial):
    sock = dial(echo_proxy)
    assert statistics.median(round_trip(sock) for _ in range(20)) < 0.02


def test_latency_adds_at_least_the_configured_delay(api: ToxiproxyClient, echo_proxy, dial):
    sock = dial(echo_proxy)
    api.add_toxic(echo_proxy.name, "latency", {"latency": 150})
    times = [round_trip(sock) for _ in range(3)]
    assert min(times) >= 0.150
    assert max(times) < 0.150 + 0.15


def test_latency_on_both_streams_adds_up(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "latency", {"latency": 80}, stream="upstream")
    api.add_toxic(echo_proxy.name, "latency", {"latency": 80}, stream="downstream")
    sock = dial(echo_proxy)
    elapsed = round_trip(sock)
    assert 0.160 <= elapsed < 0.160 + 0.15


def test_latency_jitter_stays_within_bounds(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "latency", {"latency": 100, "jitter": 50})
    sock = dial(echo_proxy)
    times = [round_trip(sock) for _ in range(12)]
    assert min(times) >= 0.050
    assert max(times) < 0.150 + 0.1
    assert max(times) - min(times) > 0.010, "jitter should vary the delay"


def test_bandwidth_caps_throughput(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "bandwidth", {"rate": 100})  # 100 KB/s downstream
    sock = dial(echo_proxy, timeout=10)
    payload = bytes(range(256)) * 800  # 204,800 bytes
    started = time.monotonic()
    sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
    sender.start()
    try:
        echoed = recv_exactly(sock, len(payload), timeout=8)
    finally:
        sender.join(8)
    elapsed = time.monotonic() - started
    assert echoed == payload
    assert 1.8 <= elapsed < 3.5, f"{len(payload)} bytes at 100 KB/s took {elapsed:.2f}s"


def test_bandwidth_zero_stalls_until_removed(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "bandwidth", {"rate": 0})
    sock = dial(echo_proxy)
    sock.sendall(b"x" * 1000)
    assert nothing_arrives(sock, 0.5)
    api.remove_toxic(echo_proxy.name, "bandwidth_downstream")
    assert recv_exactly(sock, 1000, timeout=2) == b"x" * 1000


def test_timeout_zero_is_a_black_hole_and_removing_it_closes(api, echo_proxy, dial):
    sock = dial(echo_proxy)
    assert round_trip(sock) < 1
    api.add_toxic(echo_proxy.name, "timeout", {"timeout": 0})
    sock.sendall(b"swallowed")
    assert nothing_arrives(sock, 0.6)
    started = time.monotonic()
    api.remove_toxic(echo_proxy.name, "timeout_downstream")
    assert recv_until_closed(sock, timeout=2) == b""
    assert time.monotonic() - started < 1


def test_timeout_closes_the_connection_after_the_timeout(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "timeout", {"timeout": 300})
    sock = dial(echo_proxy)
    started = time.monotonic()
    sock.sendall(b"dropped")
    assert recv_until_closed(sock, timeout=3) == b""
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5


def test_reset_peer_resets_the_connection(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "reset_peer", {"timeout": 100})
    sock = dial(echo_proxy)
    started = time.monotonic()
    sock.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        recv_until_closed(sock, timeout=3)
    assert time.monotonic() - started >= 0.09


def test_limit_data_closes_after_exactly_n_bytes(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "limit_data", {"bytes": 1000})
    sock = dial(echo_proxy)
    payload = bytes(range(250)) * 20  # 5,000 bytes
    sock.sendall(payload)
    assert recv_until_closed(sock, timeout=3) == payload[:1000]


def test_limit_data_counts_across_chunks(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "limit_data", {"bytes": 25})
    sock = dial(echo_proxy)
    for _ in range(2):
        assert round_trip(sock, b"0123456789") < 1  # 20 bytes so far
    sock.sendall(b"abcdefghij")
    assert recv_until_closed(sock, timeout=3) == b"abcde"


def _close_delay(sock: socket.socket) -> float:
    assert round_trip(sock, b"abc") < 1
    sock.shutdown(socket.SHUT_WR)  # the echo server then closes, and so does the proxy
    started = time.monotonic()
    assert recv_until_closed(sock, timeout=3) == b""
    return time.monotonic() - started


def test_slow_close_delays_the_close(api, echo_proxy, dial):
    assert _close_delay(dial(echo_proxy)) < 0.3
    api.add_toxic(echo_proxy.name, "slow_close", {"delay": 500})
    assert _close_delay(dial(echo_proxy)) >= 0.45


def test_half_close_still_delivers_the_reply(echo_proxy, dial):
    sock = dial(echo_proxy)
    payload = b"z" * 300_000
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    assert recv_until_closed(sock, timeout=5) == payload


def test_slicer_delivers_every_byte_in_small_pieces(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "slicer", {"average_size": 10, "size_variation": 4, "delay": 3000})
    sock = dial(echo_proxy)
    payload = bytes(range(200)) * 5  # 1,000 bytes
    sock.sendall(payload)
    pieces: list[bytes] = []
    deadline = time.monotonic() + 5
    while sum(map(len, pieces)) < len(payload) and time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        pieces.append(sock.recv(65536))
    assert b"".join(pieces) == payload
    assert len(pieces) >= 20, f"expected many small pieces, got {len(pieces)}"
    assert max(map(len, pieces)) < 500


def test_noop_passes_everything(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "noop", {}, stream="upstream")
    sock = dial(echo_proxy)
    payload = b"n" * 100_000
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload


def test_toxicity_zero_never_applies(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "latency", {"latency": 300}, toxicity=0.0)
    for _ in range(6):
        assert round_trip(dial(echo_proxy)) < 0.15


def test_toxicity_is_decided_per_connection(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "latency", {"latency": 100}, toxicity=0.5)
    delayed = 0
    for _ in range(24):
        sock = dial(echo_proxy)
        first, second = round_trip(sock), round_trip(sock)
        # One roll per connection: both round trips of a connection agree.
        assert (first >= 0.1) == (second >= 0.1)
        delayed += first >= 0.1
    assert 0 < delayed < 24
