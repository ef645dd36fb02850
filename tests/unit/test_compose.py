"""compose.yaml describes the same topology as the embedded stack: each replica reaches
each dependency through its own proxy named like the embedded ones, and nothing is
published beyond loopback. It is written from harness/docker/topology.py, the same
description the Docker backend runs, and must be up to date with it."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    proxies = json.loads((ROOT / "harness/docker/compose/toxiproxy.json").read_text())
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
    conf = (ROOT / "harness/docker/compose/nginx.conf").read_text()
    assert re.findall(r"server (r\d+):8000", conf) == ["r1", "r2", "r3"]
    assert "proxy_set_header Upgrade $http_upgrade" in conf


def test_each_service_starts_after_the_names_it_resolves_at_start():
    """The fault proxy resolves its upstreams when it loads its routes and exits on a name
    the network does not know yet; nginx resolves its upstreams at start. Without these
    orders compose starts them together and the stack comes up only when the race goes
    the right way."""
    services, by_port = load()
    upstream_hosts = {p["upstream"].rsplit(":", 1)[0] for p in by_port.values()}
    assert upstream_hosts == {"postgres", "redis"}
    assert upstream_hosts <= set(services["toxiproxy"].get("depends_on", []))
    conf = (ROOT / "harness/docker/compose/nginx.conf").read_text()
    assert set(re.findall(r"server (r\d+):8000", conf)) <= set(services["nginx"].get("depends_on", []))
    for name in ("r1", "r2", "r3"):
        assert {"postgres", "redis", "toxiproxy"} <= set(services[name]["depends_on"])


def test_compose_file_is_written_from_the_topology_and_up_to_date():
    from harness.docker.compose import stale

    assert stale() == [], "run `make compose-file` (python -m harness.docker.compose)"


def test_a_changed_topology_makes_the_compose_file_stale(monkeypatch):
    """The up-to-date check catches drift: a topology that differs from the file fails it."""
    from harness.docker import compose, topology

    monkeypatch.setattr(topology, "APP_PORT", 9000)
    assert ROOT / "compose.yaml" in compose.stale()


def test_image_requirements_are_the_ranges_pyproject_declares():
    import tomllib

    declared = {d.split(";")[0].strip() for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for req in (ROOT / "harness/docker/requirements").glob("*.txt"):
        for line in req.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("async-timeout"):
                assert line in declared, f"{req.name}: {line} is not what pyproject.toml declares"


def test_docker_nginx_handles_requests_as_the_embedded_one():
    """The Docker backend's load balancer (harness/docker/topology.py) and the embedded
    one (harness/servers/nginx.py) have the same `location /` and the same replica map:
    a change to one that the other lacks fails here."""
    from harness.docker.topology import Upstream as DockerUpstream, render_nginx
    from harness.servers.nginx import Upstream, render_config

    def block(text: str, start: str) -> str:
        body = text[text.index(start):]
        return body[:body.index("}") + 1]

    local = render_config(Path("/tmp/x"), 1234, "round_robin", [Upstream("r1", 4001)], Path("/tmp/x"))
    docker = render_nginx([DockerUpstream("r1", "127.0.0.1:4001")])
    assert block(local, "location / {") == block(docker, "location / {")
    assert block(local, "location @too_large {") == block(docker, "location @too_large {")
    assert block(local, "map \"$upstream_addr") == block(docker, "map \"$upstream_addr")
