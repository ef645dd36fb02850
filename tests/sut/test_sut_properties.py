"""Property-based: whatever body, path parameter or token a client sends, one real
replica answers with a refusal (4xx) or a success, never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sut_support import http, publisher_headers

pytestmark = pytest.mark.integration

HTTP = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)
BODIES = st.one_of(
    st.binary(max_size=80),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={"user": JSONISH, "data": JSONISH, "extra": JSONISH})
      .map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"user": "u1", "data": {"k": "\\ud800"}}', b'{"data": NaN}', b"[" * 5000,
                     b'{"user": "u1\\n", "data": {}}']),
)


@pytest.fixture(scope="module")
def replica(module_sut_factory, module_db, redis_server):
    return module_sut_factory.start("r1", broker="postgres", database_url=module_db, redis_url=redis_server.url)


@HTTP
@given(BODIES, st.sampled_from(["/api/notifications", "/api/broadcast"]))
def test_any_publish_body_is_refused_or_published_never_a_500(replica, body, path):
    status, _, answer = http(replica.url + path, "POST", raw=body, headers=publisher_headers())
    assert status in (201, 400, 413, 422), (status, answer)
    assert isinstance(answer, dict) and (("error" in answer) == (status != 201))


@HTTP
@given(st.text(max_size=40), st.text(max_size=12), st.text(max_size=12))
def test_any_history_query_or_item_id_is_refused_or_answered(replica, token, after, item):
    from urllib.parse import quote

    q = lambda v: quote(v, safe="", errors="surrogatepass")  # noqa: E731
    status, _, _ = http(f"{replica.url}/api/notifications?token={q(token)}&after={q(after)}")
    assert status in (200, 401, 403, 422), status
    status, _, _ = http(f"{replica.url}/api/items/{q(item) or '0'}")
    assert status in (200, 404, 422), status
    assert "Traceback" not in replica.log_text()
