"""GET /connections (a gauntlet extension to Toxiproxy's API): the open connections of
each proxy, which the harness's resource sampler charts per replica and dependency."""

from __future__ import annotations

import json
import time
import urllib.request

from proxy_support import round_trip


def counts(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/connections", timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def wait_count(url: str, name: str, want: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (got := counts(url).get(name)) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def test_counts_follow_connections_opening_and_closing(proxy_server, echo_proxy, api, dial):
    url = proxy_server.url
    assert counts(url)[echo_proxy.name] == 0
    first, second = dial(echo_proxy), dial(echo_proxy)
    round_trip(first), round_trip(second)
    assert wait_count(url, echo_proxy.name, 2) == 2
    first.close()
    assert wait_count(url, echo_proxy.name, 1) == 1, "a closed connection is no longer counted"
    api.update_proxy(echo_proxy.name, enabled=False)
    assert wait_count(url, echo_proxy.name, 0) == 0, "disabling drops every connection"
