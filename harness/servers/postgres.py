"""A throwaway Postgres cluster: initdb into the stack's temp dir, run as a child.

Postgres refuses to run as root, so as root the cluster is owned by and runs as the
`postgres` account. Every connection, local socket or TCP, needs the password the
recipe generates (SCRAM): another local account cannot reach the data, and the app gets
the credentials in its `{database_url}`. The password never appears on a command line. Durability against power loss is traded for speed (fsync off):
the cluster lives only as long as the stack. A crash fault (SIGKILL of the server) must not lose acknowledged
commits, though, or the checks would blame the app for the harness: commits stay
synchronous, so each commit's WAL is written to the kernel before the client hears
"ok", and the OS page cache, intact after a process kill, brings it back on restart.
"""

from __future__ import annotations

import glob
import os
import secrets
import signal
import shutil
import subprocess
import time
from pathlib import Path

from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy, StartError
from harness.servers.base import MissingServerError, Server, chown_tree, unprivileged_user

DB_NAME = "gauntlet"
DB_USER = "gauntlet"


def postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise MissingServerError(
        "postgres not found: install it with `sudo apt-get install -y postgresql` (or run `make setup`)"
    )


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except (ValueError, IndexError):
        return 0.0


class PostgresServer(Server):
    def __init__(self, root: Path, port: int, log_path: Path, *, max_connections: int = 300,
                 password: str | None = None) -> None:
        self.name = "postgres"
        self.password = password or secrets.token_hex(16)
        self.root = root  # owned by the server account; holds data/ and the socket
        self.port = port
        self.log_path = log_path
        self.max_connections = max_connections
        self.bindir = postgres_bindir()
        self.user = unprivileged_user("postgres")
        self.proc: ChildProcess | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return self.url_via(f"{LOOPBACK}:{self.port}")

    def url_via(self, host_port: str) -> str:
        return f"postgresql://{DB_USER}:{self.password}@{host_port}/{DB_NAME}"

    def initdb(self, deadline: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        chown_tree(self.root, self.user)
        argv = [
            str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
            "--auth=scram-sha-256", f"--pwfile={pwfile}",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        ]
        try:
            with open(self.log_path, "ab") as log:
                try:
                    # Its own session: a Ctrl-C in the terminal is the harness's to handle
                    # (tear down, exit 130), not a signal that kills initdb half-way.
                    done = subprocess.run(
                        argv, stdout=log, stderr=subprocess.STDOUT, user=self.user, start_new_session=True,
                        cwd=self.root, timeout=max(1.0, deadline - time.monotonic()),
                    )
                except subprocess.TimeoutExpired:
                    raise StartError(f"postgres initdb did not finish in time; log {self.log_path}") from None
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise StartError(f"postgres initdb failed (exit {done.returncode}); log {self.log_path}")

    def start(self, deadline: float) -> None:
        """Start the server (initdb first if there is no cluster yet) and create the database."""
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb(deadline)
            fresh = True
        else:
            fresh = False
        argv = [
            str(self.bindir / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-k", str(self.root),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", f"max_connections={self.max_connections}",
            "-c", "fsync=off", "-c", "synchronous_commit=on", "-c", "full_page_writes=off",
            "-c", "shared_buffers=128MB", "-c", "log_min_messages=warning",
        ]
        # SIGINT is Postgres's fast shutdown (TERM is "smart": it waits for every client
        # to disconnect). The stack is disposable; don't wait for clients.
        self.proc = ChildProcess(
            "postgres", argv, self.log_path, user=self.user, cwd=self.root,
            on_start=self.on_start, kill_policy=KillPolicy(signal.SIGINT, grace=5.0),
        )
        self.proc.start()
        self.proc.wait_ready(self._accepting, deadline, "accepting connections")
        if fresh:
            self._psql(f"CREATE DATABASE {DB_NAME}", deadline, database="postgres")

    def _accepting(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port), "-t", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3, start_new_session=True,
        )
        return done.returncode == 0

    def _psql(self, sql: str, deadline: float, database: str = DB_NAME) -> str:
        psql = self.bindir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        done = subprocess.run(
            [str(psql), "-h", LOOPBACK, "-p", str(self.port), "-U", DB_USER, "-d", database,
             "-X", "-q", "-A", "-t", "-c", sql],
            capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()),
            env={**os.environ, "PGCONNECT_TIMEOUT": "3", "PGPASSWORD": self.password}, start_new_session=True,
        )
        if done.returncode != 0:
            raise StartError(f"postgres: {sql!r} failed: {done.stderr.strip()}")
        return done.stdout

    def query(self, sql: str, timeout: float = 10.0) -> str:
        """Run SQL with psql (for tests and tools; the SUT uses its own driver)."""
        return self._psql(sql, time.monotonic() + timeout)
