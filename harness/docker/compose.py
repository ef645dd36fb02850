"""compose.yaml, written from the topology (harness/docker/topology.py), never by hand.

    python -m harness.docker.compose          # rewrite compose.yaml and its two config files
    python -m harness.docker.compose --check  # exit 1 if they are out of date (a test runs this)

The file describes the same stack as `gauntlet up --backend docker`: three replicas of
the reference SUT, each reaching Postgres and Redis through its own proxy of the
Toxiproxy service, nginx in front, every published port on 127.0.0.1. It names the
real Toxiproxy image; gauntlet's own proxy image speaks the same API and takes the same
flags, so `GAUNTLET_TOXIPROXY_IMAGE=gauntlet/faultproxy:latest` runs it in its place
(that is what gauntlet's test does: no registry answers on its machines).

`compose_state` turns a running compose project into gauntlet's state file, so
`gauntlet smoke`, `gauntlet chaos` (proxy faults) and `locust -f` work against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.docker import topology as topo
from harness.docker.images import ROOT, RECIPES

COMPOSE_FILE = ROOT / "compose.yaml"
CONFIG_DIR = ROOT / "harness" / "docker" / "compose"
NGINX_CONF = CONFIG_DIR / "nginx.conf"
PROXY_CONF = CONFIG_DIR / "toxiproxy.json"
REPLICAS = ("r1", "r2", "r3")
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.9.0"
LB_PORT = 8080
PROJECT = "gauntlet"
RUN = "compose"  # the run label of a compose stack (teardown and leftover checks find it)

HEADER = """\
# Written by `python -m harness.docker.compose` from harness/docker/topology.py, the
# description the Docker and Swarm backends use too (a test fails when this file is
# out of date). The same stack as `gauntlet up --backend docker`: three replicas of the
# reference SUT, each reaching Postgres and Redis through its own Toxiproxy proxy
# (postgres-r1, redis-r1, ...), nginx in front. Published ports bind to 127.0.0.1 only.
#
#   make docker-images                # gauntlet's images (the Dockerfiles below)
#   GAUNTLET_SECRET=... GAUNTLET_PUBLISHER_KEY=... docker-compose -p gauntlet up -d
#   load balancer http://127.0.0.1:8080, Toxiproxy API http://127.0.0.1:8474
#
# GAUNTLET_TOXIPROXY_IMAGE=gauntlet/faultproxy:latest runs gauntlet's own proxy in
# place of the real Toxiproxy image (same API, same flags). GAUNTLET_BROKER picks the
# reference SUT's broker (default redis); GAUNTLET_BASE the Dockerfiles' base image.
# GAUNTLET_LB_PORT and GAUNTLET_PROXY_PORT move the two fixed ports.
"""


def _build(role: str) -> dict:
    recipe = RECIPES[role]
    return {"context": ".", "dockerfile": str(recipe.dockerfile.relative_to(ROOT)),
            "args": {"BASE": "${GAUNTLET_BASE:-debian:bookworm-slim}"}}


def _service(svc: topo.Service, role_image: str, *, publish: str, extra: dict | None = None) -> dict:
    out: dict = {"image": svc.image}
    if svc.image.startswith("gauntlet/"):
        out["build"] = _build(role_image)
    if svc.command:
        out["command"] = list(svc.command)
    if svc.environment:
        out["environment"] = dict(svc.environment)
    out["labels"] = svc.labels(RUN)
    out["ports"] = [publish]
    out["stop_grace_period"] = f"{svc.stop_grace:g}s"
    if svc.depends_on:
        out["depends_on"] = list(svc.depends_on)
    out.update(extra or {})
    return out


def render() -> dict[Path, str]:
    """compose.yaml and its config files, as text."""
    import yaml

    images = topo.Images(toxiproxy="${GAUNTLET_TOXIPROXY_IMAGE:-" + TOXIPROXY_IMAGE + "}")
    services: dict[str, dict] = {}
    volumes: dict[str, dict] = {}
    for svc in topo.dependency_services(images):
        volumes[f"{svc.name}-data"] = {"labels": {topo.RUN_LABEL: RUN}}
        services[svc.name] = _service(svc, svc.name, publish=f"127.0.0.1::{svc.port}",
                                      extra={"volumes": [f"{svc.name}-data:{svc.volume}"]})
    proxy = topo.proxy_service(images)
    services["toxiproxy"] = _service(
        proxy, "faultproxy", publish=f"127.0.0.1:${{GAUNTLET_PROXY_PORT:-{topo.PROXY_API_PORT}}}:{topo.PROXY_API_PORT}",
        extra={"command": ["-host=0.0.0.0", "-config=/config/toxiproxy.json"], "sysctls": dict(proxy.sysctls),
               "volumes": [f"./{PROXY_CONF.relative_to(ROOT)}:/config/toxiproxy.json:ro"]})
    for name in REPLICAS:
        svc = topo.replica_service(name, topo.DockerApp.from_app(_reference_app()), images,
                                   broker="${GAUNTLET_BROKER:-redis}", secret="${GAUNTLET_SECRET:?set GAUNTLET_SECRET}",
                                   publisher_key="${GAUNTLET_PUBLISHER_KEY:?set GAUNTLET_PUBLISHER_KEY}")
        services[name] = _service(svc, "sut", publish=f"127.0.0.1::{topo.APP_PORT}",
                                  extra={"init": True})
    nginx = topo.nginx_service(images, REPLICAS)
    services["nginx"] = _service(nginx, "nginx", publish=f"127.0.0.1:${{GAUNTLET_LB_PORT:-{LB_PORT}}}:{topo.LB_PORT}",
                                 extra={"volumes": [f"./{NGINX_CONF.relative_to(ROOT)}:/etc/nginx/nginx.conf:ro"]})
    networks = {"default": {"labels": {topo.RUN_LABEL: RUN}}}
    document = {"version": "3.8", "services": services, "volumes": volumes, "networks": networks}
    compose = HEADER + yaml.safe_dump(document, sort_keys=False, width=120)
    upstreams = [topo.Upstream(n, f"{n}:{topo.APP_PORT}") for n in REPLICAS]
    routes = [r.to_json() for r in topo.proxy_routes(REPLICAS)]
    return {COMPOSE_FILE: compose, NGINX_CONF: topo.render_nginx(upstreams),
            PROXY_CONF: json.dumps(routes, indent=2) + "\n"}


def _reference_app():
    from harness.config import AppSpec

    return AppSpec()


def stale() -> list[Path]:
    return [path for path, text in render().items() if not path.exists() or path.read_text() != text]


def write() -> list[Path]:
    changed = stale()
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in render().items():
        path.write_text(text)
    return changed


def stopped_services(client, project: str = PROJECT, tail: int = 3) -> list[str]:
    """One line per container of the project that is not running: its service, exit code
    and last log lines. A stack with one of these never gets ready; saying so at once beats
    waiting out a deadline."""
    out = []
    for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
        state = c.attrs["State"]
        if state["Status"] in ("running", "created", "restarting"):
            continue
        try:
            logs = c.logs(tail=tail).decode(errors="replace").strip().replace("\n", " | ")
        except Exception:  # removed meanwhile: the status says enough
            logs = ""
        out.append(f"{c.labels.get(topo.NAME_LABEL, c.name)} {state['Status']} (exit {state['ExitCode']}): {logs}")
    return sorted(out)


def compose_state(client, *, secret: str, publisher_key: str, run_dir: Path, project: str = PROJECT):
    """The state of a running compose project, from its containers' labels and published ports."""
    from common.state import ComponentState, ProxyState, ReplicaState, StackState

    from chaos.toxiproxy_client import ToxiproxyClient

    containers = client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
    by_name = {c.labels.get(topo.NAME_LABEL): c for c in containers if c.labels.get(topo.NAME_LABEL)}

    def port(container, inner: int) -> int:
        bound = container.attrs["NetworkSettings"]["Ports"].get(f"{inner}/tcp") or []
        return int(bound[0]["HostPort"])

    lb = f"http://127.0.0.1:{port(by_name['nginx'], topo.LB_PORT)}"
    api = f"http://127.0.0.1:{port(by_name['toxiproxy'], topo.PROXY_API_PORT)}"
    replicas = []
    for name in sorted((n for n, c in by_name.items() if c.labels.get(topo.ROLE_LABEL) == "replica"),
                       key=topo.replica_index):
        c = by_name[name]
        p = port(c, topo.APP_PORT)
        urls = topo.dependency_urls(name, True)
        replicas.append(ReplicaState(name=name, url=f"http://127.0.0.1:{p}", port=p, pid=c.attrs["State"]["Pid"],
                                     database_url=urls["database_url"], redis_url=urls["redis_url"]))
    components = [ComponentState(name=n if n != "toxiproxy" else "faultproxy", kind=n if n != "toxiproxy" else "faultproxy", port=port(c, inner),
                                 url=f"127.0.0.1:{port(c, inner)}", pid=c.attrs["State"]["Pid"])
                  for n, c, inner in ((n, by_name[n], i) for n, i in (("postgres", topo.POSTGRES_PORT),
                                                                     ("redis", topo.REDIS_PORT),
                                                                     ("toxiproxy", topo.PROXY_API_PORT),
                                                                     ("nginx", topo.LB_PORT)))]
    proxies = [ProxyState(p.name, p.listen, p.upstream, p.enabled)
               for p in sorted(ToxiproxyClient(api).proxies().values(), key=lambda p: p.name)]
    return StackState(run_dir=str(run_dir), harness_pid=0, started=0.0, broker="redis", lb_strategy="round_robin",
                      lb_url=lb, ws_url=lb.replace("http://", "ws://") + "/ws", secret=secret,
                      publisher_key=publisher_key, proxy_api_url=api,
                      spec={"backend": "compose", "compose_project": project}, components=components,
                      replicas=replicas, proxies=proxies)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        old = stale()
        for path in old:
            print(f"{path.relative_to(ROOT)} is out of date: run `python -m harness.docker.compose`")
        return 1 if old else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
