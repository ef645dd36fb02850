"""The published `toxiproxy` client package (toxiproxy-python), pointed at our server:
if it works here, code written for a real Toxiproxy works unchanged."""

from __future__ import annotations

import pytest
from proxy_support import round_trip
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists


@pytest.fixture
def toxiproxy(api, proxy_server) -> Toxiproxy:
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", proxy_server.port)  # class-level setting
    return server


def test_create_list_get_destroy(toxiproxy, echo_server):
    assert toxiproxy.running()
    assert b"version" in toxiproxy.version()
    proxy = toxiproxy.create(upstream=echo_server.address, name="tp-create")
    assert proxy.name == "tp-create" and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert set(toxiproxy.proxies()) == {"tp-create"}
    assert toxiproxy.get_proxy("tp-create").upstream == echo_server.address
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo_server.address, name="tp-create")
    assert toxiproxy.destroy(proxy) is True
    assert toxiproxy.get_proxy("tp-create") is None


def test_toxics_through_the_package(toxiproxy, echo_server, dial, api):
    proxy = toxiproxy.create(upstream=echo_server.address, name="tp-toxic")
    sock = dial(api.get_proxy("tp-toxic"))
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 200, "jitter": 0}
    assert round_trip(sock) >= 0.2
    assert proxy.destroy_toxic("latency_downstream") is True
    assert proxy.get_toxic("latency_downstream") is None
    assert round_trip(sock) < 0.1


def test_errors_map_to_the_package_exceptions(toxiproxy, echo_server):
    proxy = toxiproxy.create(upstream=echo_server.address, name="tp-errors")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="earthquake")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="sideways")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("absent")
    proxy.add_toxic(type="latency")
    with pytest.raises(ProxyExists):  # the package maps every 409 to ProxyExists
        proxy.add_toxic(type="latency")


def test_down_context_disables_then_enables(toxiproxy, echo_server, api, dial):
    proxy = toxiproxy.create(upstream=echo_server.address, name="tp-down")
    with proxy.down():
        assert api.get_proxy("tp-down").enabled is False
        with pytest.raises(ConnectionRefusedError):
            dial(api.get_proxy("tp-down"), timeout=2)
    assert api.get_proxy("tp-down").enabled is True
    assert round_trip(dial(api.get_proxy("tp-down"))) < 0.5


def test_reset_and_populate(toxiproxy, echo_server, api):
    made = toxiproxy.populate([{"name": "tp-pop", "upstream": echo_server.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in made] == ["tp-pop"]
    proxy = toxiproxy.get_proxy("tp-pop")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert toxiproxy.reset() is True
    assert api.get_proxy("tp-pop").enabled is True and api.toxics("tp-pop") == []
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}
