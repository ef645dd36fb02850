"""compose.yaml describes the same topology as the embedded stack: each replica reaches
each dependency through its own proxy named like the embedded ones, and nothing is
published beyond loopback."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    proxies = json.loads((ROOT / "harness/docker/toxiproxy.json").read_text())
    return compose["services"], {p["listen"].rsplit(":", 1)[1]: p for p in proxies}


def test_published_ports_bind_to_loopback_only():
    services, _ = load()
    published = [port for svc in services.values() for port in svc.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)


def test_each_replica_reaches_each_dependency_through_its_own_proxy():
    services, by_port = load()
    replicas = sorted(name for name in services if re.fullmatch(r"r\d+", name))
    assert replicas == ["r1", "r2", "r3"]
    for name in replicas:
        env = services[name]["environment"]
        assert env["SUT_INSTANCE"] == name
        for var, dep, upstream in (("DATABASE_URL", "postgres", "postgres:5432"), ("REDIS_URL", "redis", "redis:6379")):
            host, port = re.search(r"@?([a-z]+):(\d+)/", env[var]).groups()
            assert host == "toxiproxy"
            proxy = by_port[port]
            assert proxy["name"] == f"{dep}-{name}" and proxy["upstream"] == upstream


def test_nginx_balances_over_every_replica_with_websocket_upgrade():
    conf = (ROOT / "harness/docker/nginx.conf").read_text()
    assert re.findall(r"server (r\d+):8000", conf) == ["r1", "r2", "r3"]
    assert "proxy_set_header Upgrade $http_upgrade" in conf
