"""The HTTP API of one replica: health, readiness, metrics, auth, publishing, history,
items, and error responses for bad input."""

from __future__ import annotations

import pytest
from sut_support import SECRET, http, publish, publisher_headers

from harness.ports import free_port
from harness.tokens import user_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replica(module_sut_factory, module_db, redis_server):
    """One replica for the module: the tests use distinct users and compare deltas."""
    return module_sut_factory.start("r1", broker="postgres", database_url=module_db, redis_url=redis_server.url,
                                    extra_args=("--max-body-bytes", "4096"))


def test_health_ready_metrics_carry_the_instance(replica):
    status, headers, body = http(replica.url + "/api/health")
    assert (status, body) == (200, {"status": "ok", "instance": "r1"})
    assert headers["x-instance"] == "r1"
    status, headers, body = http(replica.url + "/api/ready")
    assert status == 200 and body["status"] == "ready" and headers["x-instance"] == "r1"
    metrics = replica.metrics()
    assert metrics["instance"] == "r1"
    assert metrics["broker"]["kind"] == "postgres" and metrics["broker"]["connected"] is True
    assert metrics["db"]["connected"] is True
    for key in ("sockets", "users", "published", "delivered", "replayed", "uptime_s"):
        assert key in metrics


def test_publish_needs_the_publisher_key(replica):
    url = replica.url + "/api/notifications"
    published_before = replica.metrics()["published"]
    assert http(url, "POST", {"user": "u1", "data": {}})[0] == 401
    status, headers, body = http(url, "POST", {"user": "u1", "data": {}}, headers=publisher_headers("wrong"))
    assert status == 401 and "error" in body and headers["x-instance"] == "r1"
    assert http(replica.url + "/api/broadcast", "POST", {"data": {}})[0] == 401
    status, body = publish(replica.url, "u1", {"key": "k1", "sent_ts": 1.5})
    assert status == 201
    assert body["user"] == "u1" and body["instance"] == "r1" and isinstance(body["id"], int)
    status, body = publish(replica.url, None, {"key": "b1"})
    assert status == 201 and body["user"] is None
    assert replica.metrics()["published"] == published_before + 2


def test_history_is_private_to_its_user(replica):
    ids = [publish(replica.url, "alice", {"key": f"a{i}", "n": i})[1]["id"] for i in range(3)]
    publish(replica.url, "bob", {"key": "b0"})
    broadcast = publish(replica.url, None, {"key": "all"})[1]["id"]
    # Broadcasts from other tests of this module are everyone's history: start after them.
    url = replica.url + f"/api/notifications?user=alice&after={ids[0] - 1}"
    assert http(url)[0] == 401
    assert http(url + "&token=alice.forged")[0] == 401
    assert http(url, headers={"Authorization": f"Bearer {user_token('other-secret', 'alice')}"})[0] == 401
    status, _, body = http(url, headers={"Authorization": f"Bearer {user_token(SECRET, 'bob')}"})
    assert status == 403 and "error" in body
    status, _, body = http(url + f"&token={user_token(SECRET, 'alice')}")
    assert status == 200
    assert [item["id"] for item in body["items"]] == [*ids, broadcast]
    assert body["items"][1]["data"] == {"key": "a1", "n": 1} and body["items"][1]["origin"] == "r1"
    status, _, body = http(url.replace(f"after={ids[0] - 1}", f"after={ids[0]}") + f"&limit=1&token={user_token(SECRET, 'alice')}")
    assert [item["id"] for item in body["items"]] == [ids[1]]


@pytest.mark.parametrize(("raw", "status"), [
    (b"{not json", 400),
    (b"\xff\xfe", 400),
    (b"[1, 2]", 422),
    (b'{"user": "u1", "data": {"x": NaN}}', 400),
    (b'{"user": "u1", "data": {"x": -Infinity}}', 400),
    (b'{"data": {}}', 422),  # no user
    (b'{"user": 17, "data": {}}', 422),
    (b'{"user": "' + b"u" * 65 + b'", "data": {}}', 422),
    (b'{"user": "u1", "data": "text"}', 422),
    (b'{"user": "u1"}', 422),
    (b'{"user": "u1", "data": {}, "extra": 1}', 422),
    (b'{"user": "u1", "data": {"blob": "' + b"x" * 5000 + b'"}}', 413),
])
def test_bad_publish_bodies_get_json_errors(replica, raw, status):
    got, headers, body = http(replica.url + "/api/notifications", "POST", raw=raw, headers=publisher_headers())
    assert got == status, body
    assert isinstance(body, dict) and isinstance(body.get("error"), str)
    assert headers["x-instance"] == "r1"


def test_bad_broadcast_and_unknown_routes(replica):
    status, _, body = http(replica.url + "/api/broadcast", "POST", {"user": "u1", "data": {}},
                           headers=publisher_headers())
    assert status == 422 and "user" in body["error"]
    status, headers, body = http(replica.url + "/nope")
    assert status == 404 and body == {"error": "not found"} and headers["x-instance"] == "r1"
    assert http(replica.url + "/api/health", "DELETE")[0] == 405
    assert http(replica.url + f"/api/notifications?after=x&token={user_token(SECRET, 'u1')}")[0] == 422


def test_items_read_through_the_cache(replica):
    status, headers, first = http(replica.url + "/api/items/7")
    assert status == 200 and first["id"] == 7 and first["name"] == "item-7"
    status, headers, second = http(replica.url + "/api/items/7")
    assert status == 200 and second["source"] == "cache" and headers["x-source"] == "cache"
    assert {k: v for k, v in second.items() if k != "source"} == {k: v for k, v in first.items() if k != "source"}
    assert http(replica.url + "/api/items/1001")[0] == 404
    assert http(replica.url + "/api/items/0")[0] == 404
    status, _, body = http(replica.url + "/api/items/abc")
    assert status == 422 and "integer" in body["error"]


def test_items_fall_back_to_the_database_without_redis(sut_factory, fresh_db):
    # Nothing listens on this port: the cache fails fast and the database answers.
    replica = sut_factory.start("r9", broker="postgres", database_url=fresh_db,
                                redis_url=f"redis://127.0.0.1:{free_port()}/0")
    for _ in range(3):
        status, headers, body = http(replica.url + "/api/items/3", timeout=3)
        assert status == 200 and body["source"] == "db" and headers["x-source"] == "db"


def test_text_that_cannot_be_utf8_is_a_422_and_unusual_text_round_trips(replica):
    # A lone UTF-16 surrogate is valid JSON for Python's parser but cannot be encoded.
    raw = b'{"user": "zoe", "data": {"text": "\\ud800"}}'
    status, _, body = http(replica.url + "/api/notifications", "POST", raw=raw, headers=publisher_headers())
    assert status == 422 and "surrogate" in body["error"]
    data = {"text": "\u00e9\U0001F600 \u0000 \"quoted\"", "n": 1.5e300, "list": [None, True]}
    status, body = publish(replica.url, "zoe", data)
    assert status == 201
    status, _, history = http(replica.url + f"/api/notifications?after={body['id'] - 1}&token={user_token(SECRET, 'zoe')}")
    assert status == 200 and history["items"][0]["data"] == data
