"""`python -m sut`: parse settings, bind, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn

from sut.app import create_app
from sut.config import Config, ConfigError, load_config
from sut.shutdown import ReplicaServer

# uvicorn waits for in-flight requests at most this long; the rest of the shutdown
# bound is left for closing sockets, broker and pool.
SHUTDOWN_RESERVE = 3.0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"sut: error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config)
    try:
        listener = _bind(config.host, config.port)
    except OSError as exc:
        print(f"sut: error: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    app, replica = create_app(config)
    server = ReplicaServer(
        uvicorn.Config(
            app,
            loop=_pick("uvloop", "asyncio"),
            http=_pick("httptools", "h11"),
            ws="websockets-sansio",
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, int(config.shutdown_timeout - SHUTDOWN_RESERVE)),
            timeout_keep_alive=5,
            ws_max_size=1 << 20,
            backlog=4096,
        ),
        drain=replica.drain,
        bound=config.shutdown_timeout,
        ignore_sigterm=config.defects.ignore_sigterm,
        exit_on_sigterm=config.defects.exit_on_sigterm,
    )
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0 if server.started else 1


def _bind(host: str, port: int) -> socket.socket:
    # Bound here rather than by uvicorn so a taken port is one clear error line.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _pick(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
        return preferred
    except ImportError:
        return fallback


def _setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper()),
        format=f"%(asctime)s %(levelname)s [{config.instance}] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # asyncpg and redis are chatty at debug level; their failures reach us as exceptions.
    for noisy in ("asyncpg", "redis"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
