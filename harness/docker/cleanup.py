"""Remove everything that carries a run's label: services, containers, networks, volumes.

Used by every Docker teardown and by the reaper (harness/reaper.py) when the harness
died without one. Safe to call twice; what is already gone is skipped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from harness.docker.topology import RUN_LABEL


def remove_run(client, run: str, timeout: float = 30.0) -> list[str]:
    """Remove the run's objects; returns what could not be removed (empty when clean).

    Passes until nothing carries the label: a container still being created or removed
    when a pass lists them keeps its network "in use", and the next pass finds both."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        problems = _removal_pass(client, run)
        left = leftovers(client, run)
        if not left:
            return []
        if time.monotonic() >= deadline:
            return problems or [f"{name}: still there" for name in left]
        time.sleep(0.5)


def _removal_pass(client, run: str) -> list[str]:
    from docker.errors import APIError, NotFound

    flt = {"label": f"{RUN_LABEL}={run}"}
    problems: list[str] = []
    try:
        services = client.services.list(filters=flt)
    except APIError:  # not a Swarm manager: there are no services
        services = []
    for service in services:
        try:
            service.remove()
        except NotFound:
            pass
        except APIError as exc:
            problems.append(f"service {service.name}: {exc.explanation}")

    def remove(container: dict) -> None:
        try:
            client.api.remove_container(container["Id"], force=True, v=True)
        except NotFound:
            pass
        except APIError as exc:
            problems.append(f"container {container['Names'][0].lstrip('/')}: {exc.explanation}")

    # The low-level list: the high-level one inspects each container, racing with removals.
    containers = client.api.containers(all=True, filters=flt)
    if containers:
        # In parallel: each forced removal waits for its container's kill and cleanup.
        with ThreadPoolExecutor(max_workers=min(16, len(containers))) as pool:
            list(pool.map(remove, containers))
    # A service's tasks leave their containers a moment after the service is removed.
    if services:
        _wait_gone(client, flt)
    for network in client.networks.list(filters=flt):
        try:
            network.remove()
        except NotFound:
            pass
        except APIError as exc:
            problems.append(f"network {network.name}: {exc.explanation}")
    for volume in client.volumes.list(filters=flt):
        try:
            volume.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            problems.append(f"volume {volume.name}: {exc.explanation}")
    return problems


def leftovers(client, run: str | None = None) -> list[str]:
    """Names of whatever still carries the run's label (any gauntlet run's, if run is None)."""
    flt = {"label": f"{RUN_LABEL}={run}" if run else RUN_LABEL}
    found = [f"container {c['Names'][0].lstrip('/')}" for c in client.api.containers(all=True, filters=flt)]
    found += [f"network {n.name}" for n in client.networks.list(filters=flt)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=flt)]
    try:
        found += [f"service {s.name}" for s in client.services.list(filters=flt)]
    except Exception:  # not a Swarm manager
        pass
    return found


def remove_orphans(client, among: set[str] | None = None) -> list[str]:
    """Remove every gauntlet run with nothing left running and no service: what a daemon
    stopped under a live stack leaves behind (its owner and reaper lost the daemon, its
    containers exited). Called when a private daemon starts; returns the runs removed."""
    containers = client.api.containers(all=True, filters={"label": RUN_LABEL})
    runs = {c["Labels"][RUN_LABEL] for c in containers}
    runs |= {n.attrs["Labels"][RUN_LABEL] for n in client.networks.list(filters={"label": RUN_LABEL})}
    running = {c["Labels"][RUN_LABEL] for c in containers if c["State"] == "running"}
    try:
        running |= {s.attrs["Spec"]["Labels"].get(RUN_LABEL) for s in client.services.list(filters={"label": RUN_LABEL})}
    except Exception:  # not a Swarm manager: there are no services
        pass
    orphans = sorted((runs - running) & (among if among is not None else runs))
    for run in orphans:
        remove_run(client, run)
    return orphans


def _wait_gone(client, flt: dict, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        containers = client.api.containers(all=True, filters=flt)
        if not containers:
            return
        for container in containers:
            try:
                client.api.remove_container(container["Id"], force=True, v=True)
            except Exception:  # removed meanwhile by the Swarm agent
                pass
        time.sleep(0.2)


def reap(base_url: str, run: str, leave_swarm: bool = False) -> None:
    """The reaper's entry: connect and remove (and leave the swarm the run created), never raise."""
    try:
        import docker  # not harness.docker.daemon, which imports this module

        client = docker.DockerClient(base_url=base_url, timeout=30)
        try:
            remove_run(client, run)
            if leave_swarm:
                client.swarm.leave(force=True)
        finally:
            client.close()
    except Exception:  # the reaper must go on with the rest of its manifest
        pass
