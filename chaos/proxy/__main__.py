"""python -m chaos.proxy --host 127.0.0.1 --port 8474 [--config populate.json] [--seed S]

Toxiproxy's own flags (`-host=0.0.0.0 -port=8474 -config=FILE`) are accepted too, so
this proxy's image runs with the command a compose file gives the Toxiproxy image."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
from pathlib import Path

from .api import VERSION
from .logs import configure, event
from .server import ConfigError, ToxiproxyServer

log = logging.getLogger("chaos.proxy.server")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.proxy",
        description="Toxiproxy-compatible TCP fault proxy (same HTTP API and toxics).",
    )
    parser.add_argument("--host", "-host", default="127.0.0.1", help="API listen host (default 127.0.0.1)")
    parser.add_argument("--port", "-port", type=int, default=8474, help="API port, 0 for a free one (default 8474)")
    parser.add_argument("--config", "-config", type=Path, help="JSON file of proxies to create at start (as POST /populate)")
    parser.add_argument("--seed", type=int, help="seed for toxicity, jitter and slicing (default: random, logged)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow non-loopback addresses for the API, proxy listeners and upstreams")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="debug logs every API request and connection open/close")
    parser.add_argument("--version", action="version", version=f"chaos.proxy {VERSION}")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    server = ToxiproxyServer(seed, allow_remote=args.allow_remote)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.config is not None:
            count = await server.populate_file(args.config)
            log.info(event("config.loaded", path=args.config, proxies=count))
        await server.start(args.host, args.port)
    except ConfigError as exc:
        print(f"chaos.proxy: error: {exc}", file=sys.stderr)
        await server.stop()
        return 2
    await stop.wait()
    log.info(event("shutdown"))
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure(args.log_level)
    try:
        import uvloop
    except ImportError:  # the proxy works on the default loop, only slower
        return asyncio.run(serve(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
