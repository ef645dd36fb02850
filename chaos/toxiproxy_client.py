"""A small typed client for the Toxiproxy 2.x HTTP API.

It drives the embedded proxy (`python -m chaos.proxy`) and a real Toxiproxy server
alike. Standard library only; every call has a timeout. Every failure, HTTP or
network, is one exception: `ToxiproxyError(status, message)`, where status 0 means
the server could not be reached or did not answer in time.

    client = ToxiproxyClient("http://127.0.0.1:8474")
    proxy = client.create_proxy("redis-r1", upstream="127.0.0.1:6379")
    client.add_toxic("redis-r1", "latency", {"latency": 200, "jitter": 20})
    client.disable("redis-r1")   # the dependency is down for replica r1
    client.reset()               # every proxy enabled, every toxic gone
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

DEFAULT_URL = "http://127.0.0.1:8474"
STREAMS = ("upstream", "downstream")


class ToxiproxyError(Exception):
    """The API refused a call (status = HTTP status, message = its `error`), or the
    server was unreachable or too slow (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"toxiproxy: {message} (status {status})" if status else f"toxiproxy: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proxy:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()),
        )


@dataclass(frozen=True)
class ProxySpec:
    """A proxy to create, as /populate and --config files take it."""

    name: str
    upstream: str
    listen: str = "127.0.0.1:0"
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "upstream": self.upstream, "listen": self.listen, "enabled": self.enabled}


class ToxiproxyClient:
    def __init__(self, url: str = DEFAULT_URL, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    # --- server ---

    def version(self) -> str:
        data = self._call("GET", "/version")
        # Toxiproxy before 2.7 answered the bare version text rather than JSON.
        return str(data["version"]) if isinstance(data, dict) else str(data)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    def populate(self, proxies: Iterable[ProxySpec]) -> list[Proxy]:
        """Create or replace proxies in one call; unchanged ones keep their connections."""
        data = self._call("POST", "/populate", [p.to_json() for p in proxies])
        return [Proxy.from_json(p) for p in (data or {}).get("proxies") or ()]

    # --- proxies ---

    def proxies(self) -> dict[str, Proxy]:
        data = self._call("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        body = ProxySpec(name, upstream, listen, enabled).to_json()
        return Proxy.from_json(self._call("POST", "/proxies", body))

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._call("GET", f"/proxies/{_seg(name)}"))

    def update_proxy(
        self, name: str, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> Proxy:
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled)) if v is not None}
        # POST rather than PATCH: every Toxiproxy 2.x accepts it (PATCH came in 2.6).
        return Proxy.from_json(self._call("POST", f"/proxies/{_seg(name)}", body))

    def enable(self, name: str) -> Proxy:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> Proxy:
        """Close the listener and every connection: the dependency is down."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_seg(name)}")

    # --- toxics ---

    def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._call("GET", f"/proxies/{_seg(proxy)}/toxics")]

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, int] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> Toxic:
        """Add a toxic; it also acts on connections already open. The default name is
        `<type>_<stream>`, so a second toxic of a type on a stream needs a name."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be upstream or downstream, not {stream!r}")
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity,
                                "attributes": dict(attributes or {})}
        if name:
            body["name"] = name
        return Toxic.from_json(self._call("POST", f"/proxies/{_seg(proxy)}/toxics", body))

    def get_toxic(self, proxy: str, name: str) -> Toxic:
        return Toxic.from_json(self._call("GET", f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}"))

    def update_toxic(
        self, proxy: str, name: str, attributes: Mapping[str, int] | None = None, *, toxicity: float | None = None
    ) -> Toxic:
        """Change some attributes (the others keep their values) and/or the toxicity."""
        body: dict[str, Any] = {}
        if attributes:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._call("POST", f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{_seg(proxy)}/toxics/{_seg(name)}")

    # --- transport ---

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("User-Agent", "gauntlet-toxiproxy-client")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(exc.code, _error_message(exc)) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ToxiproxyError(0, f"cannot reach {self.url}: {reason}") from None
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode("utf-8", "replace").strip()


def _seg(name: str) -> str:
    return quote(name, safe="")


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    try:
        data = json.loads(text)
    except ValueError:
        return text or exc.reason
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return text
