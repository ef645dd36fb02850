"""Property-based: any body sent to the real proxy's HTTP API gets Toxiproxy's answer
or a 4xx naming the problem, never a 500 or a dropped connection."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_proxy_api import raw  # noqa: F401  (the raw keep-alive client fixture of the API tests)

HTTP = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)
PROXY = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.sampled_from(["p1", "p2", ""]), JSONISH),
    "listen": st.one_of(st.sampled_from(["127.0.0.1:0", ":0", "0.0.0.0:0", "x", "[::1]:0"]), JSONISH),
    "upstream": st.one_of(st.sampled_from(["127.0.0.1:9", "10.0.0.1:80", "a:b", "localhost:1"]), JSONISH),
    "enabled": JSONISH})
TOXIC = st.fixed_dictionaries({}, optional={
    "name": JSONISH, "type": st.one_of(st.sampled_from(["latency", "timeout", "bandwidth", "x"]), JSONISH),
    "stream": st.one_of(st.sampled_from(["upstream", "downstream"]), JSONISH), "toxicity": JSONISH,
    "attributes": st.one_of(st.dictionaries(st.sampled_from(["latency", "jitter", "rate", "latncy"]), JSONISH,
                                            max_size=3), JSONISH)})


def _raw(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


@HTTP
@given(st.one_of(PROXY, JSONISH, st.binary(max_size=40)), st.one_of(TOXIC, JSONISH, st.binary(max_size=40)))
def test_any_body_gets_an_answer_below_500(raw, proxy_body, toxic_body):
    raw.call("POST", "/reset")
    for name in list(raw.call("GET", "/proxies")[1]):
        raw.call("DELETE", f"/proxies/{name}")
    raw.call("POST", "/proxies", {"name": "base", "upstream": "127.0.0.1:9"})
    for method, path, body in (("POST", "/proxies", proxy_body), ("POST", "/populate", proxy_body),
                               ("POST", "/proxies/base", proxy_body), ("POST", "/proxies/base/toxics", toxic_body),
                               ("POST", "/proxies/base/toxics/latency_downstream", toxic_body)):
        status, answer = raw.call(method, path, raw=_raw(body))
        assert status < 500, (method, path, body, status, answer)
