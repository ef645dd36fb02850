"""A Toxiproxy-compatible TCP fault proxy, embedded so stacks need no Toxiproxy binary.

Same HTTP API (endpoints, JSON shapes, status codes, error messages) and the same
toxics as Toxiproxy 2.x, so the chaos code drives this and a real Toxiproxy alike.

Public surface:
    ToxiproxyServer   proxies + API, for running in-process (tests, tools)
    python -m chaos.proxy   the server as a process (what the harness starts)

Errors: `ApiError(message, status)` is what the API answers; `ConfigError` is a bad
populate file or API address at start. Anything else is a bug.
"""

from .errors import ApiError
from .server import ConfigError, ToxiproxyServer

__all__ = ["ApiError", "ConfigError", "ToxiproxyServer"]
