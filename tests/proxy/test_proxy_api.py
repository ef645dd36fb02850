"""The HTTP API, byte for byte where clients depend on it: status codes, JSON shapes
and Toxiproxy's error messages. Raw HTTP here; the typed client further down."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest
from proxy_support import nothing_arrives, round_trip

from chaos.toxiproxy_client import ProxySpec, ToxiproxyClient, ToxiproxyError


class RawApi:
    """One kept-alive HTTP connection, so the tests also cover keep-alive framing."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=5)

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data, headers=headers or {})
        response = self.conn.getresponse()
        payload = response.read()
        if response.getheader("Content-Type", "").startswith("application/json") and payload:
            return response.status, json.loads(payload)
        return response.status, payload

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw(api, proxy_server):
    client = RawApi(proxy_server.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def upstream(echo_server) -> str:
    return echo_server.address


def test_create_returns_201_and_the_proxy(raw, upstream):
    status, body = raw.call("POST", "/proxies", {"name": "shape", "upstream": upstream, "listen": "127.0.0.1:0"})
    assert status == 201
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["name"] == "shape" and body["upstream"] == upstream
    assert body["enabled"] is True and body["toxics"] == []
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_list_get_and_delete(raw, upstream):
    raw.call("POST", "/proxies", {"name": "one", "upstream": upstream})
    status, listing = raw.call("GET", "/proxies")
    assert status == 200 and listing["one"]["upstream"] == upstream
    status, proxy = raw.call("GET", "/proxies/one")
    assert status == 200 and proxy == listing["one"]
    status, body = raw.call("DELETE", "/proxies/one")
    assert (status, body) == (204, b"")
    assert raw.call("GET", "/proxies/one") == (404, {"error": "proxy not found", "status": 404})


def test_create_disabled_proxy_does_not_listen(raw, upstream):
    status, body = raw.call("POST", "/proxies", {"name": "off", "upstream": upstream,
                                                 "listen": "127.0.0.1:0", "enabled": False})
    assert status == 201 and body["enabled"] is False and body["listen"] == "127.0.0.1:0"


def test_duplicate_proxy_is_409(raw, upstream):
    raw.call("POST", "/proxies", {"name": "dup", "upstream": upstream})
    assert raw.call("POST", "/proxies", {"name": "dup", "upstream": upstream}) == (
        409, {"error": "proxy already exists", "status": 409})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "x"}, "missing required field: upstream"),
        ({"name": 5, "upstream": "127.0.0.1:1"}, "bad request body: field name must be a string, got a number"),
        ({"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"},
         "bad request body: field enabled must be a boolean, got a string"),
        ({"name": "x", "upstream": "nohostport"}, "upstream 'nohostport' is not host:port"),
        ([1, 2], "bad request body: proxy must be a JSON object, got an array"),
    ],
)
def test_bad_proxy_bodies_are_400(raw, body, message):
    assert raw.call("POST", "/proxies", body) == (400, {"error": message, "status": 400})


@pytest.mark.parametrize("raw_body", [b"{", b"", b"not json", b'{"name": "x",}'])
def test_bad_json_is_400(raw, raw_body):
    status, body = raw.call("POST", "/proxies", raw=raw_body)
    assert status == 400
    assert body["status"] == 400 and body["error"].startswith("bad request body: ")


def test_non_loopback_listen_is_refused(raw, upstream):
    status, body = raw.call("POST", "/proxies", {"name": "wide", "upstream": upstream, "listen": "0.0.0.0:0"})
    assert status == 400 and "--allow-remote" in body["error"]
    assert raw.call("GET", "/proxies/wide")[0] == 404


def test_listen_port_in_use_is_an_error(raw, upstream):
    _, first = raw.call("POST", "/proxies", {"name": "a", "upstream": upstream})
    status, body = raw.call("POST", "/proxies", {"name": "b", "upstream": upstream, "listen": first["listen"]})
    assert status == 500 and "address already in use" in body["error"]


def test_update_proxy_by_post_and_patch(raw, upstream):
    raw.call("POST", "/proxies", {"name": "upd", "upstream": upstream})
    status, body = raw.call("POST", "/proxies/upd", {"enabled": False})
    assert status == 200 and body["enabled"] is False
    status, body = raw.call("PATCH", "/proxies/upd", {"enabled": True})
    assert status == 200 and body["enabled"] is True
    assert raw.call("PATCH", "/proxies/missing", {"enabled": True})[0] == 404


def test_toxic_create_defaults_and_shape(raw, upstream):
    raw.call("POST", "/proxies", {"name": "tox", "upstream": upstream})
    status, toxic = raw.call("POST", "/proxies/tox/toxics", {"type": "latency", "attributes": {"latency": 50}})
    assert status == 200
    assert toxic == {"attributes": {"latency": 50, "jitter": 0}, "name": "latency_downstream",
                     "type": "latency", "stream": "downstream", "toxicity": 1}
    status, toxic = raw.call("POST", "/proxies/tox/toxics",
                             {"type": "bandwidth", "stream": "upstream", "toxicity": 0.5})
    assert toxic["name"] == "bandwidth_upstream" and toxic["toxicity"] == 0.5
    assert toxic["attributes"] == {"rate": 0}
    status, listing = raw.call("GET", "/proxies/tox/toxics")
    assert status == 200 and [t["name"] for t in listing] == ["bandwidth_upstream", "latency_downstream"]
    _, proxy = raw.call("GET", "/proxies/tox")
    assert proxy["toxics"] == listing
    assert raw.call("GET", "/proxies/tox/toxics/latency_downstream")[1]["attributes"]["latency"] == 50


def test_every_toxic_type_is_accepted_with_its_attributes(raw, upstream):
    raw.call("POST", "/proxies", {"name": "all", "upstream": upstream})
    expected = {
        "latency": {"latency": 1, "jitter": 2},
        "bandwidth": {"rate": 3},
        "slow_close": {"delay": 4},
        "timeout": {"timeout": 5},
        "reset_peer": {"timeout": 6},
        "slicer": {"average_size": 7, "size_variation": 1, "delay": 9},
        "limit_data": {"bytes": 10},
        "noop": {},
    }
    for kind, attributes in expected.items():
        status, toxic = raw.call("POST", "/proxies/all/toxics", {"type": kind, "attributes": attributes})
        assert status == 200, toxic
        assert toxic["attributes"] == attributes


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid, can be either upstream or downstream"),
        ({"type": "earthquake"}, 400, "invalid toxic type"),
        ({}, 400, "invalid toxic type"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, 400,
         "bad request body: attribute latency must be an integer, got 'slow'"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, 400,
         "bad request body: attribute latency must be an integer, got 1.5"),
        ({"type": "latency", "toxicity": "high"}, 400, "bad request body: field toxicity must be a number, got a string"),
    ],
)
def test_bad_toxics_are_rejected(raw, upstream, body, status, message):
    raw.call("POST", "/proxies", {"name": "bad", "upstream": upstream})
    assert raw.call("POST", "/proxies/bad/toxics", body) == (status, {"error": message, "status": status})
    assert raw.call("GET", "/proxies/bad/toxics") == (200, [])


def test_toxic_conflicts_and_missing(raw, upstream):
    raw.call("POST", "/proxies", {"name": "tc", "upstream": upstream})
    raw.call("POST", "/proxies/tc/toxics", {"type": "latency"})
    assert raw.call("POST", "/proxies/tc/toxics", {"type": "latency"}) == (
        409, {"error": "toxic already exists", "status": 409})
    # A second toxic of the same type needs its own name.
    assert raw.call("POST", "/proxies/tc/toxics", {"type": "latency", "name": "lat2"})[0] == 200
    missing = (404, {"error": "toxic not found", "status": 404})
    assert raw.call("GET", "/proxies/tc/toxics/nope") == missing
    assert raw.call("DELETE", "/proxies/tc/toxics/nope") == missing
    assert raw.call("POST", "/proxies/tc/toxics/nope", {"toxicity": 1}) == missing
    no_proxy = (404, {"error": "proxy not found", "status": 404})
    assert raw.call("POST", "/proxies/ghost/toxics", {"type": "latency"}) == no_proxy
    assert raw.call("GET", "/proxies/ghost/toxics") == no_proxy
    assert raw.call("DELETE", "/proxies/ghost") == no_proxy


def test_toxic_update_keeps_unmentioned_attributes(raw, upstream):
    raw.call("POST", "/proxies", {"name": "tu", "upstream": upstream})
    raw.call("POST", "/proxies/tu/toxics", {"type": "latency", "attributes": {"latency": 10, "jitter": 5}})
    status, toxic = raw.call("PATCH", "/proxies/tu/toxics/latency_downstream", {"attributes": {"latency": 99}})
    assert status == 200 and toxic["attributes"] == {"latency": 99, "jitter": 5} and toxic["toxicity"] == 1
    status, toxic = raw.call("POST", "/proxies/tu/toxics/latency_downstream", {"toxicity": 0.25})
    assert toxic["toxicity"] == 0.25 and toxic["attributes"]["latency"] == 99
    status, body = raw.call("DELETE", "/proxies/tu/toxics/latency_downstream")
    assert (status, body) == (204, b"")


def test_reset_is_204(raw, upstream):
    raw.call("POST", "/proxies", {"name": "rs", "upstream": upstream})
    raw.call("POST", "/proxies/rs/toxics", {"type": "timeout"})
    raw.call("POST", "/proxies/rs", {"enabled": False})
    assert raw.call("POST", "/reset") == (204, b"")
    _, proxy = raw.call("GET", "/proxies/rs")
    assert proxy["enabled"] is True and proxy["toxics"] == []


def test_populate_creates_keeps_and_replaces(raw, upstream, echo_server):
    status, body = raw.call("POST", "/populate", [
        {"name": "p1", "upstream": upstream},
        {"name": "p2", "upstream": upstream, "enabled": False},
    ])
    assert status == 201 and [p["name"] for p in body["proxies"]] == ["p1", "p2"]
    p1 = body["proxies"][0]
    raw.call("POST", "/proxies/p1/toxics", {"type": "latency"})
    # Same listen and upstream: kept as is, toxics and all.
    status, body = raw.call("POST", "/populate", [{"name": "p1", "upstream": upstream, "listen": p1["listen"]}])
    assert status == 201 and body["proxies"][0]["toxics"][0]["name"] == "latency_downstream"


def test_populate_errors(raw, upstream):
    assert raw.call("POST", "/populate", [{"name": "ok", "upstream": upstream}, {"upstream": upstream}]) == (
        400, {"error": "missing required field: name at proxy 2", "status": 400})
    assert raw.call("GET", "/proxies/ok")[0] == 404, "nothing is created when the input is invalid"
    status, body = raw.call("POST", "/populate", {"name": "x"})
    assert status == 400 and body["error"].startswith("bad request body: ")


def test_version(raw):
    status, body = raw.call("GET", "/version")
    assert status == 200 and body["version"].startswith("2.")


def test_unknown_route_and_method(raw):
    status, body = raw.call("GET", "/nothing/here")
    assert status == 404 and body["status"] == 404
    status, body = raw.call("PUT", "/proxies")
    assert status == 405 and "not allowed" in body["error"]


def test_browsers_are_refused(raw):
    status, _ = raw.call("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert status == 403


def test_names_are_url_decoded(raw, upstream):
    raw.call("POST", "/proxies", {"name": "with space", "upstream": upstream})
    assert raw.call("GET", "/proxies/with%20space")[1]["name"] == "with space"


# --- the typed client ---


def test_client_round_trip(api: ToxiproxyClient, echo_server):
    proxy = api.create_proxy("typed", upstream=echo_server.address)
    assert proxy.enabled and proxy.listen_port > 0 and proxy.toxics == ()
    assert api.get_proxy("typed") == proxy
    assert set(api.proxies()) == {"typed"}
    toxic = api.add_toxic("typed", "latency", {"latency": 5}, stream="upstream", toxicity=0.5)
    assert (toxic.name, toxic.stream, toxic.toxicity) == ("latency_upstream", "upstream", 0.5)
    assert api.get_toxic("typed", "latency_upstream") == toxic
    assert api.update_toxic("typed", "latency_upstream", {"jitter": 2}).attributes == {"latency": 5, "jitter": 2}
    assert api.get_proxy("typed").toxics[0].name == "latency_upstream"
    api.remove_toxic("typed", "latency_upstream")
    assert api.toxics("typed") == []
    assert api.disable("typed").enabled is False
    assert api.enable("typed").listen == proxy.listen
    made = api.populate([ProxySpec("typed2", echo_server.address)])
    assert [p.name for p in made] == ["typed2"]
    assert api.version().startswith("2.")
    api.delete_proxy("typed")
    assert "typed" not in api.proxies()


def test_client_raises_one_error_type(api: ToxiproxyClient, proxy_server):
    with pytest.raises(ToxiproxyError) as missing:
        api.get_proxy("absent")
    assert (missing.value.status, missing.value.message) == (404, "proxy not found")
    api.create_proxy("twice", upstream="127.0.0.1:9")
    with pytest.raises(ToxiproxyError) as duplicate:
        api.create_proxy("twice", upstream="127.0.0.1:9")
    assert duplicate.value.status == 409
    with pytest.raises(ValueError):
        api.add_toxic("twice", "latency", stream="sideways")
    unreachable = ToxiproxyClient("http://127.0.0.1:9", timeout=1)
    with pytest.raises(ToxiproxyError) as down:
        unreachable.proxies()
    assert down.value.status == 0 and "cannot reach" in down.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "latency", "attributes": {"latency": 2**70}}, "out of range"),
        ({"type": "latency", "toxicity": 10**400}, "out of range"),
        ({"type": "latency", "attributes": {"latency": True}}, "must be an integer"),
        ({"type": "latency", "attributes": [1]}, "field attributes must be a JSON object"),
    ],
)
def test_absurd_toxic_values_are_400_not_500(raw, upstream, body, message):
    raw.call("POST", "/proxies", {"name": "absurd", "upstream": upstream})
    status, answer = raw.call("POST", "/proxies/absurd/toxics", body)
    assert status == 400 and message in answer["error"]


def test_nan_is_not_json(raw, upstream):
    raw.call("POST", "/proxies", {"name": "nan", "upstream": upstream})
    status, answer = raw.call("POST", "/proxies/nan/toxics", raw=b'{"type": "latency", "toxicity": NaN}')
    assert status == 400 and "NaN" in answer["error"]


def test_huge_latency_holds_data_without_breaking_the_proxy(api, echo_proxy, dial, proxy_server):
    sock = dial(echo_proxy)
    api.add_toxic(echo_proxy.name, "latency", {"latency": 2**62})
    sock.sendall(b"held")
    assert nothing_arrives(sock, 0.3)
    api.remove_toxic(echo_proxy.name, "latency_downstream")
    assert sock.recv(4) == b"held"
    assert round_trip(sock) < 0.5
    assert "Traceback" not in proxy_server.log.read_text()


@pytest.mark.parametrize("attributes,message", [
    ({"latncy": 1000}, "unknown attribute 'latncy' for a latency toxic; its attributes are latency, jitter"),
    ({"latency": 5, "jiter": 1}, "unknown attribute 'jiter'"),
])
def test_a_misspelt_toxic_attribute_is_refused_not_ignored(raw, upstream, attributes, message):
    raw.call("POST", "/proxies", {"name": "typo", "upstream": upstream})
    status, body = raw.call("POST", "/proxies/typo/toxics", {"type": "latency", "attributes": attributes})
    assert status == 400 and message in body["error"], body
    assert raw.call("GET", "/proxies/typo/toxics")[1] == [], "nothing was added"
    raw.call("POST", "/proxies/typo/toxics", {"type": "latency", "attributes": {"latency": 5}})
    status, body = raw.call("POST", "/proxies/typo/toxics/latency_downstream", {"attributes": attributes})
    assert status == 400 and message in body["error"], body
    assert raw.call("GET", "/proxies/typo/toxics/latency_downstream")[1]["attributes"] == {"latency": 5, "jitter": 0}
    status, body = raw.call("POST", "/proxies/typo/toxics", {"type": "noop", "attributes": {"anything": 1}})
    assert status == 400 and "it has no attributes" in body["error"]


@pytest.mark.parametrize("target", ["10.0.0.1:5432", "192.0.2.7:80", "[2001:db8::1]:6379", "0.0.0.0:80",
                                    "host.invalid:80"])
def test_an_upstream_outside_loopback_is_refused(raw, upstream, target):
    status, body = raw.call("POST", "/proxies", {"name": "far", "upstream": target})
    assert status == 400 and ("not a loopback address" in body["error"] or "cannot resolve" in body["error"]), body
    status, body = raw.call("POST", "/populate", [{"name": "far", "upstream": target}])
    assert status == 400 and body["proxies"] == []
    raw.call("POST", "/proxies", {"name": "near", "upstream": upstream})
    status, body = raw.call("POST", "/proxies/near", {"upstream": target})
    assert status == 400, body
    assert raw.call("GET", "/proxies/near")[1]["upstream"] == upstream, "the proxy kept its upstream"
    assert "far" not in raw.call("GET", "/proxies")[1]


def test_a_loopback_name_is_an_upstream(raw, echo_server, dial):
    port = echo_server.address.rsplit(":", 1)[1]
    status, body = raw.call("POST", "/proxies", {"name": "byname", "upstream": f"localhost:{port}"})
    assert status == 201, body
    sock = socket.create_connection(("127.0.0.1", int(body["listen"].rsplit(":", 1)[1])), timeout=5)
    try:
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
    finally:
        sock.close()
