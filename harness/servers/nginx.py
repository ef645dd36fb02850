"""nginx as the load balancer in front of the replicas (HTTP and WebSocket upgrade).

The upstream is rewritten and reloaded (SIGHUP) when replicas are added, removed or
drained. Old workers keep their open WebSockets until those close or
`worker_shutdown_timeout` passes, as in production.
"""

from __future__ import annotations

import os
import pwd
import signal
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.ports import LOOPBACK
from harness.process import ChildProcess, KillPolicy, StartError
from harness.servers.base import Server, which
from common.state import REPLICA_HEADER
from harness.servers.limits import NginxLimits, nginx_limits

LB_STRATEGIES = ("round_robin", "least_conn", "ip_hash")
WORKERS = 2
# Connections the kernel queues before a worker accepts them (capped by
# net.core.somaxconn): a connect storm of thousands of sockets must wait, not be refused.
LISTEN_BACKLOG = 4096
# Accounts the workers may run as when the master is root, best first.
WORKER_ACCOUNTS = ("www-data", "nobody")
MAX_BODY = 1024 * 1024
# The same shape as the reference SUT's own 413, so a client sees one error body
# whichever of the two refused the request.
TOO_LARGE_BODY = '{"error":"body is larger than %d bytes"}' % MAX_BODY


def worker_user() -> str:
    """The `user` directive: as root, workers run as an unprivileged account (the
    master keeps root only to bind and to read its config)."""
    if os.geteuid() != 0:
        return ""
    for name in WORKER_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return f"user {name} {_group_name(entry.pw_gid)};\n"
    raise StartError(f"running as root but none of the accounts {', '.join(WORKER_ACCOUNTS)} exists "
                     "to run the nginx workers as")


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@dataclass
class Upstream:
    name: str
    port: int
    drained: bool = False


def replica_map(upstreams: list[Upstream]) -> str:
    """nginx `map` from the answering upstream to its replica name.

    `$upstream_addr` lists every server tried ("a:1, b:2" after a retry, "a : b" after
    an internal redirect); the last one is the one whose answer went out, and it only
    answered if bytes came back from it (`$upstream_bytes_received`, same positions). A
    response nginx made itself (502: every try refused) names nobody: no header.
    """
    lines = []
    for u in upstreams:
        addr = f"{LOOPBACK}:{u.port}".replace(".", r"\.")
        lines.append(f'    "~(^|\\s){addr}\\|(.*\\s)?[1-9][0-9]*$" {u.name};\n')
    return ("  map \"$upstream_addr|$upstream_bytes_received\" $gauntlet_replica {\n"
            '    default "";\n' + "".join(lines) + "  }\n")


def render_config(root: Path, port: int, strategy: str, upstreams: list[Upstream], log_dir: Path,
                  limits: NginxLimits | None = None) -> str:
    if strategy not in LB_STRATEGIES:
        raise ValueError(f"unknown load-balancing strategy {strategy!r}: choose one of {', '.join(LB_STRATEGIES)}")
    method = "" if strategy == "round_robin" else f"    {strategy};\n"
    servers = "".join(
        # A drained replica stays in the file marked `down` so ip_hash keeps its mapping.
        f"    server {LOOPBACK}:{u.port} max_fails=1 fail_timeout=2s{' down' if u.drained else ''}; # {u.name}\n"
        for u in upstreams
    )
    if not upstreams:
        # nginx refuses an empty upstream; a closed port makes every request a 502.
        servers = f"    server {LOOPBACK}:1 down;\n"
    user = worker_user()
    limits = limits or nginx_limits()
    # `reuseport`: one listening socket per worker, connections hashed across them by the
    # kernel. With a shared socket one worker can take most of a connect storm and run
    # out of worker_connections while the other idles.
    return f"""{user}worker_processes {WORKERS};
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {log_dir}/nginx-error.log warn;
worker_rlimit_nofile {limits.rlimit_nofile};
worker_shutdown_timeout 30s;
events {{ worker_connections {limits.worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  client_max_body_size {MAX_BODY};
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
{replica_map(upstreams)}  upstream replicas {{
{method}{servers}    keepalive 64;
  }}
  server {{
    listen {LOOPBACK}:{port} backlog={LISTEN_BACKLOG} reuseport;
    error_page 413 @too_large;
    location @too_large {{
      default_type application/json;
      return 413 '{TOO_LARGE_BODY}';
    }}
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 2s;
      proxy_read_timeout 3600s;
      proxy_send_timeout 60s;
      # A refused connection (dead replica) is retried on the next one; a POST that
      # already reached a replica is never sent twice.
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 3;
      add_header X-Upstream $upstream_addr always;
      # The app cannot name a replica in our header; only the map below does.
      proxy_hide_header {REPLICA_HEADER};
      add_header {REPLICA_HEADER} $gauntlet_replica always;
    }}
  }}
}}
"""


def _workers(master: psutil.Process) -> dict[int, str]:
    titles = {}
    for child in master.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                titles[child.pid] = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            pass
    return titles


class NginxServer(Server):
    def __init__(self, root: Path, port: int, log_dir: Path, strategy: str) -> None:
        self.name = "nginx"
        self.root = root
        self.port = port
        self.log_dir = log_dir
        self.strategy = strategy
        self.binary = which("nginx", "nginx")
        self.conf = root / "nginx.conf"
        self.proc: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_config(self, upstreams: list[Upstream]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        text = render_config(self.root, self.port, self.strategy, upstreams, self.log_dir)
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf)

    def start(self, upstreams: list[Upstream], deadline: float) -> None:
        self.write_config(upstreams)
        argv = [self.binary, "-c", str(self.conf), "-p", str(self.root), "-e", str(self.log_dir / "nginx-error.log")]
        # QUIT is nginx's graceful stop; TERM is its fast stop, which is what teardown wants.
        self.proc = ChildProcess("nginx", argv, self.log_dir / "nginx.log", cwd=self.root,
                                 on_start=self.on_start, kill_policy=KillPolicy(signal.SIGTERM, grace=3.0))
        self.proc.start()
        self.proc.wait_ready(self._answering, deadline, "serving")

    def _answering(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/", timeout=0.5)
        except urllib.error.HTTPError:
            return True  # any HTTP answer (even 502 while replicas start) means nginx serves
        return True

    def reload(self, upstreams: list[Upstream], timeout: float = 5.0) -> None:
        """Rewrite the upstream and reload; returns when new workers run the new config."""
        if not self.alive():
            raise StartError("nginx is not running")
        self.write_config(upstreams)
        check = self._test_config()
        if check:
            raise StartError(f"nginx rejected the new config: {check}")
        master = psutil.Process(self.proc.pid)
        before = {c.pid for c in master.children()}
        os.kill(self.proc.pid, signal.SIGHUP)
        # Done when new workers run and every old one has stopped accepting: an old worker
        # lingers while its WebSockets stay open, but then its title says "shutting down".
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = _workers(master)
            new = [pid for pid in workers if pid not in before]
            old_accepting = [pid for pid, title in workers.items()
                             if pid in before and "shutting down" not in title]
            if new and not old_accepting:
                return
            time.sleep(0.02)
        raise StartError("nginx did not switch to the new config after reload")

    def _test_config(self) -> str:
        import subprocess

        done = subprocess.run(
            [self.binary, "-t", "-q", "-c", str(self.conf), "-p", str(self.root), "-e", "/dev/null"],
            capture_output=True, text=True, timeout=10,
        )
        return "" if done.returncode == 0 else done.stderr.strip()
