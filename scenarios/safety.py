"""Load goes to loopback only, unless the operator says otherwise (`--allow-remote`).

A load generator pointed at the wrong URL is a denial-of-service tool; the default
refuses anything that is not this machine. Names are not resolved: only `localhost`
(and `*.localhost`) count as loopback names, so a DNS answer cannot widen the scope.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class RemoteTargetError(ValueError):
    """A target outside loopback without --allow-remote."""


def is_loopback_host(host: str) -> bool:
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_remote: bool, what: str = "target") -> None:
    """Raise RemoteTargetError unless `url` points at loopback (or remote is allowed)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise RemoteTargetError(f"{what} {url!r} is not a URL with a host (expected e.g. http://127.0.0.1:8000)")
    if allow_remote or is_loopback_host(host):
        return
    raise RemoteTargetError(
        f"refusing to send load to {host} ({what} {url}): only loopback (127.0.0.0/8, ::1, localhost) "
        f"is allowed without --allow-remote"
    )
