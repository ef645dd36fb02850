"""Finding a Docker daemon, or starting a private one like any other server the harness runs.

`connect()` returns a docker SDK client for the daemon the environment names
(`DOCKER_HOST`, else the default socket) or raises `DockerUnavailable` with one line
saying what to do. `PrivateDaemon` runs `dockerd` on its own socket, data root and exec
root under a cache folder (default `~/.cache/gauntlet/docker`), so built images persist
between test sessions; it is what `make docker-daemon` and the tests use where no
daemon answers.

    python -m harness.docker.daemon start   # prints DOCKER_HOST=unix://...; idempotent
    python -m harness.docker.daemon stop
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "GAUNTLET_DOCKER_CACHE"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class DockerUnavailable(Exception):
    """No usable Docker daemon (or SDK); the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gauntlet" / "docker")


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def client_for(base_url: str, timeout: float = 60.0):
    import docker

    return docker.DockerClient(base_url=base_url, timeout=int(timeout))


def ping(base_url: str, timeout: float = 3.0) -> bool:
    try:
        client = client_for(base_url, timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to talk to it means: no daemon there
        return False


def connect(base_url: str | None = None):
    """A client for the daemon at `base_url` (default: $DOCKER_HOST or the default socket)."""
    try:
        import docker  # noqa: F401
    except ImportError:
        raise DockerUnavailable("the docker Python package is missing: pip install 'docker>=7'") from None
    url = base_url or docker_host()
    if not ping(url):
        private = PrivateDaemon()
        hint = (f"; a private one is up at {private.host}: export DOCKER_HOST={private.host}"
                if url != private.host and private.running() else
                "; start one with `make docker-daemon` and export the DOCKER_HOST it prints")
        raise DockerUnavailable(f"no Docker daemon answers at {url}{hint}")
    return client_for(url)


@dataclass
class PrivateDaemon:
    """dockerd with its own socket, data root and exec root under one folder."""

    root: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.root = Path(self.root or cache_dir())

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return self.socket.exists() and ping(self.host)

    def start(self, timeout: float = 30.0) -> bool:
        """Start dockerd unless it answers already; True if this call started it."""
        if self.running():
            return False
        binary = shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if binary is None:
            raise DockerUnavailable("dockerd not found: install it with `apt-get install -y docker.io` "
                                    "(or run `make setup`)")
        if os.geteuid() != 0:
            raise DockerUnavailable("a private dockerd needs root; start one as root (`make docker-daemon`) "
                                    "or point DOCKER_HOST at a running daemon")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.pid() is None:
            self.pidfile.unlink(missing_ok=True)
        argv = [binary, "--data-root", str(self.root / "root"), "--exec-root", str(self.root / "exec"),
                "-H", self.host, "--pidfile", str(self.pidfile)]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DockerUnavailable(f"dockerd exited (code {proc.returncode}) at start; see {self.log}")
            if self.running():
                self._remove_orphans()
                return True
            time.sleep(0.2)
        proc.terminate()
        raise DockerUnavailable(f"dockerd did not answer within {timeout:.0f}s; see {self.log}")

    def _remove_orphans(self) -> None:
        """Runs left stopped when this daemon last went down have no owner any more."""
        from harness.docker.cleanup import remove_orphans

        try:
            client = client_for(self.host, timeout=30)
            try:
                removed = remove_orphans(client)
            finally:
                client.close()
        except Exception as exc:  # the daemon is up; leftovers only cost disk
            print(f"gauntlet: could not remove runs left by the last daemon: {exc}", file=sys.stderr)
            return
        if removed:
            print(f"gauntlet: removed {len(removed)} run(s) left stopped by the last daemon: {', '.join(removed)}",
                  file=sys.stderr)

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


class SharedDaemon:
    """The private dockerd shared by every session that uses it at once (test sessions,
    xdist workers, benches): each holds a lease (a file named by its pid) while it runs.
    The daemon is stopped when the last lease goes, and only if a session started it; one
    started by `make docker-daemon` stays up. Start, lease and release happen under one
    lock, so a session cannot join a daemon that another is stopping."""

    def __init__(self, daemon: PrivateDaemon | None = None) -> None:
        self.daemon = daemon or PrivateDaemon()
        self.leases = self.daemon.root / "leases"
        self.marker = self.daemon.root / "started-by-session"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.daemon.root.mkdir(parents=True, exist_ok=True)
        with open(self.daemon.root / "lease.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def acquire(self) -> str:
        """Start the daemon unless it answers; hold a lease on it; its DOCKER_HOST."""
        with self._locked():
            if self.daemon.start():
                self.marker.write_text(str(os.getpid()))
            self.leases.mkdir(exist_ok=True)
            (self.leases / str(os.getpid())).touch()
        return self.daemon.host

    def release(self) -> bool:
        """Drop this process's lease; True if that stopped the daemon."""
        with self._locked():
            (self.leases / str(os.getpid())).unlink(missing_ok=True)
            if self._live_leases() or not self.marker.exists():
                return False
            self.daemon.stop()
            self.marker.unlink(missing_ok=True)
            return True

    def _live_leases(self) -> list[int]:
        live = []
        for lease in self.leases.glob("*") if self.leases.exists() else []:
            try:
                os.kill(int(lease.name), 0)
                live.append(int(lease.name))
            except (ValueError, ProcessLookupError):
                lease.unlink(missing_ok=True)  # a session that died without releasing
            except PermissionError:
                live.append(int(lease.name))
        return live


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    daemon = PrivateDaemon()
    try:
        if command == "start":
            started = daemon.start()
            print(f"DOCKER_HOST={daemon.host}" + ("" if started else "  (already running)"))
        elif command == "stop":
            daemon.stop()
        elif command == "status":
            print(f"DOCKER_HOST={daemon.host} {'running' if daemon.running() else 'not running'}")
        else:
            print("usage: python -m harness.docker.daemon start|stop|status", file=sys.stderr)
            return 2
    except DockerUnavailable as exc:
        print(f"gauntlet: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
