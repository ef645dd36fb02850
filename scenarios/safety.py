"""Load goes to loopback only, unless the operator says otherwise (`--allow-remote`).

A load generator pointed at the wrong URL is a denial-of-service tool; the default
refuses anything that is not this machine. A name proves nothing by its spelling
(`/etc/hosts` can send `app.localhost` anywhere), so every name is resolved once,
every address it resolves to must be loopback, and the answer is pinned: from then
on this process resolves that name to exactly the checked addresses (the HTTP client,
the WebSocket client and Socket.IO all look names up through `getaddrinfo`), so no
second lookup can send the load somewhere the check did not see.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from urllib.parse import urlsplit


class RemoteTargetError(ValueError):
    """A target outside loopback without --allow-remote."""


# name (lower case, no brackets or trailing dot) -> the checked addresses, in resolver order
_pins: dict[str, tuple[tuple[int, str], ...]] = {}
_lock = threading.Lock()
_original_getaddrinfo = socket.getaddrinfo


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str) -> tuple[tuple[int, str], ...]:
    """Every (family, address) `host` resolves to, once; a pinned name gives its pin."""
    name = _normal(host)
    literal = _literal(name)
    if literal is not None:
        return ((socket.AF_INET6 if literal.version == 6 else socket.AF_INET, name),)
    with _lock:
        if name in _pins:
            return _pins[name]
    try:
        infos = _original_getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RemoteTargetError(f"cannot resolve {host!r}: {reason}") from None
    found: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        item = (family, str(sockaddr[0]))
        if item not in found:
            found.append(item)
    return tuple(found)


def is_loopback_host(host: str) -> bool:
    """True when `host` is a loopback address, or a name whose every address is loopback."""
    try:
        addresses = resolve(host)
    except RemoteTargetError:
        return False
    return bool(addresses) and all(_literal(ip) is not None and _literal(ip).is_loopback for _, ip in addresses)


def check_url(url: str, allow_remote: bool, what: str = "target") -> None:
    """Raise RemoteTargetError unless `url` points at loopback (or remote is allowed);
    then pin the name to the addresses that were checked."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise RemoteTargetError(f"{what} {url!r} is not a URL with a host (expected e.g. http://127.0.0.1:8000)")
    if allow_remote:
        try:
            pin(host, resolve(host))
        except RemoteTargetError:
            pass  # an unresolvable remote name fails where it is used, as it would anyway
        return
    addresses = resolve(host)
    outside = [ip for _, ip in addresses if _literal(ip) is None or not _literal(ip).is_loopback]
    if outside or not addresses:
        where = f"{host} ({', '.join(outside)})" if outside and outside != [_normal(host)] else host
        raise RemoteTargetError(
            f"refusing to send load to {where} ({what} {url}): only loopback (127.0.0.0/8, ::1) is allowed "
            f"without --allow-remote"
        )
    pin(host, addresses)


def pin(host: str, addresses: tuple[tuple[int, str], ...]) -> None:
    name = _normal(host)
    if _literal(name) is not None or not addresses:
        return
    with _lock:
        _pins.setdefault(name, addresses)  # the first check wins: a pin never moves
    _install()


def _pinned_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    name = _normal(host) if isinstance(host, str) else None
    pinned = _pins.get(name) if name else None
    if pinned is None:
        return _original_getaddrinfo(host, port, family, type, proto, flags)
    out = []
    for fam, ip in pinned:
        if family not in (0, fam):
            continue
        # Resolve the literal (fast, no lookup) so port, socket type and the sockaddr
        # shape come out exactly as the resolver gives them.
        out.extend(_original_getaddrinfo(ip, port, fam, type, proto, flags | socket.AI_NUMERICHOST))
    if not out:
        raise socket.gaierror(socket.EAI_FAMILY, f"{host} has no pinned address of that family")
    return out


_installed = False


def _install() -> None:
    """Answer lookups of pinned names from the pin, in this process (gevent's socket too)."""
    global _installed
    if _installed:
        return
    _installed = True
    socket.getaddrinfo = _pinned_getaddrinfo
    try:
        import gevent.socket

        gevent.socket.getaddrinfo = _pinned_getaddrinfo
    except ImportError:  # tools that check a URL without Locust
        pass
