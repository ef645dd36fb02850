"""host:port parsing, resolution and the loopback-only rule for listen addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from .errors import ApiError, invalid_address


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str, what: str) -> HostPort:
    """Go's net.SplitHostPort rules: `host:port`, `[v6]:port`, `:port`."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise invalid_address(f"{what} {text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise invalid_address(f"{what} {text!r}: IPv6 addresses need brackets, e.g. [::1]:8080")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise invalid_address(f"{what} {text!r}: port must be a number from 0 to 65535")
    return HostPort(host, int(port_text))


def parse_upstream(text: str) -> HostPort:
    address = split_host_port(text, "upstream")
    if not address.host or address.port == 0:
        raise invalid_address(f"upstream {text!r} needs a host and a non-zero port")
    return address


async def resolve_upstream(text: str, allow_remote: bool) -> list[tuple[int, str]]:
    """Every address the upstream's host resolves to, as (family, ip), each checked.

    Without `allow_remote` every one must be loopback: a proxy must not become a way
    to reach other hosts. Callers connect to one of these addresses (never to the name
    again), so what was checked is what is reached."""
    address = parse_upstream(text)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise invalid_address(f"upstream {text!r}: cannot resolve {address.host!r}: {exc.strerror}") from None
    found: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        if not allow_remote and not ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback:
            raise invalid_address(
                f"upstream {text!r} resolves to {ip}, which is not a loopback address; the proxy only "
                "connects to loopback unless started with --allow-remote")
        if (family, ip) not in found:
            found.append((family, ip))
    found.sort(key=lambda item: item[0] != socket.AF_INET)  # IPv4 first, as for listen
    return found


async def resolve_listen(text: str, allow_remote: bool) -> HostPort:
    """The address to bind, as an IP. Non-loopback addresses need `allow_remote`.

    An empty listen address means all interfaces in Toxiproxy; here it means a free
    loopback port unless remote listening is allowed.
    """
    if not text:
        text = ":0" if allow_remote else "127.0.0.1:0"
    address = split_host_port(text, "listen")
    host = address.host or ("0.0.0.0" if allow_remote else "127.0.0.1")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise invalid_address(f"listen {text!r}: cannot resolve {host!r}: {exc.strerror}") from None
    # Like Go's net.Listen, bind one address, IPv4 first.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    ip = str(infos[0][4][0])
    if not allow_remote and not ipaddress.ip_address(ip).is_loopback:
        raise ApiError(
            f"listen {text!r} is not a loopback address; the proxy only listens on "
            "loopback unless started with --allow-remote",
            400,
        )
    return HostPort(ip, address.port)
