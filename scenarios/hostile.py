"""Hostile traffic: credentials an attacker would try, mixed into the load.

Each attempt takes a credential the target adapter really presents (a user token in a
WebSocket URL or a read's header, the publisher key in a publish's header) and breaks
it the way attackers and buggy clients do: forged (a well-formed token with a made-up
MAC), truncated, extended, non-ASCII, another user's valid token for this user's data,
or none at all. A correct app refuses every one (4xx, or a WebSocket refused or closed
with a 4xxx code); the `security` check (reports/security.py) fails on any it accepted.

Every attempt is one hostile.csv row: `ts,kind,transport,request,user,status,outcome,
detail` with outcome `accepted`, `refused`, or `error` (no answer, 5xx: neither).
Hostile requests go through a plain HTTP client, not Locust's, so they never count in
the app's error rate (http.csv) or its latency targets.

This module does not import Locust; the user class is in users.py.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import quote, urlsplit

from scenarios.adapters.base import ConnectFailed, PublishRequest, ReadRequest, TargetAdapter

ACCEPTED, REFUSED, ERROR = "accepted", "refused", "error"
HTTP, WS = "http", "ws"
NON_ASCII = "é✓日😀"
# Without a welcome frame, how long a socket must stay open to count as let in.
CLOSE_PROBE_S = 1.0


@dataclass(frozen=True)
class Outcome:
    outcome: str
    status: int | None
    detail: str


# -- how a credential is broken -------------------------------------------------------

def forged(token: str, rng: random.Random) -> str:
    """Same shape, made-up signature: `<user>.<random hex of the same length>`."""
    user, dot, mac = token.rpartition(".")
    fake = "".join(rng.choice("0123456789abcdef") for _ in mac or "0" * 64)
    return f"{user}{dot}{fake}" if dot else fake


def truncated(token: str, rng: random.Random) -> str:
    return token[: max(0, len(token) - rng.randint(1, max(1, min(16, len(token)))))]


def extended(token: str, rng: random.Random) -> str:
    return token + rng.choice(("0", "00", "a", "=", "%00"))


def non_ascii(token: str, rng: random.Random) -> str:
    at = rng.randrange(max(1, len(token)))
    return token[:at] + rng.choice(NON_ASCII) + token[at + 1:]


def missing(token: str, rng: random.Random) -> str:
    return ""


MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "forged": forged, "truncated": truncated, "extended": extended, "non-ascii": non_ascii, "missing": missing,
}


@dataclass(frozen=True)
class AttemptKind:
    name: str          # hostile.csv kind, e.g. "ws-forged"
    transport: str
    target: str        # "ws" | "read" | "publish"
    mutation: str      # a MUTATIONS key, or "other-user"


def catalogue() -> tuple[AttemptKind, ...]:
    kinds = [AttemptKind(f"ws-{m}", WS, "ws", m) for m in MUTATIONS]
    kinds += [AttemptKind(f"read-{m}", HTTP, "read", m) for m in MUTATIONS]
    kinds.append(AttemptKind("read-other-user", HTTP, "read", "other-user"))
    kinds += [AttemptKind(f"publish-key-{m}", HTTP, "publish", m) for m in MUTATIONS]
    return tuple(kinds)


def replace_credential(value: str, valid: str, bad: str) -> str | None:
    """`value` with the credential swapped (also where it appears URL-quoted); None when
    the value does not carry it."""
    if not valid:
        return None
    if valid in value:
        return value.replace(valid, bad)
    quoted = quote(valid, safe="")
    if quoted in value:
        return value.replace(quoted, quote(bad, safe=""))
    return None


def with_credential(req: ReadRequest | PublishRequest, valid: str, bad: str) -> tuple[str, dict[str, str]] | None:
    """The request's path and headers carrying `bad` instead of `valid`; a header that
    would be empty is left out (a missing credential). None if `valid` is not in it."""
    path = replace_credential(req.path, valid, bad)
    headers: dict[str, str] = {}
    found = path is not None
    for name, value in req.headers.items():
        swapped = replace_credential(value, valid, bad)
        if swapped is None:
            headers[name] = value
            continue
        found = True
        if swapped.strip() and swapped.strip().lower() != "bearer":
            headers[name] = swapped
    if not found:
        return None
    return (path if path is not None else req.path), headers


# -- the attempts ---------------------------------------------------------------------

class HostileClient:
    """Makes hostile attempts against one target and records each one."""

    def __init__(self, adapter: TargetAdapter, http_url: str, publisher_key: str, record: Callable[[tuple], None], rng: random.Random,
                 users: Callable[[], int], timeout: float = 5.0) -> None:
        self.adapter = adapter
        self.base = urlsplit(http_url)
        # The valid token the adapter would present for a user (the thing to break).
        self.token: Callable[[str], str] = getattr(adapter, "user_token", None) or (lambda user: "")
        self.publisher_key = publisher_key
        self.record = record
        self.rng = rng
        self.users = users
        self.timeout = timeout
        self.kinds = tuple(k for k in catalogue() if self.supports(k))
        self._deck: list[AttemptKind] = []

    def next_kind(self) -> AttemptKind:
        """Every kind once, in a shuffled order, then again: a short run still tries each
        kind (a random pick leaves some out of a few dozen attempts), in no fixed order."""
        if not self._deck:
            self._deck = list(self.kinds)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def supports(self, kind: AttemptKind) -> bool:
        """Whether the adapter presents the credential this kind breaks (an app without
        authentication presents none, and there is nothing to forge)."""
        token = self.token("u0")
        if kind.target == "ws":
            return callable(getattr(self.adapter, "connect_with_token", None)) and bool(token)
        if kind.target == "publish":
            probe = self.adapter.publish_request("u0", {"key": "probe", "sent_ts": 0.0})
            return bool(self.publisher_key) and with_credential(probe, self.publisher_key, "x") is not None
        return bool(token) and any(with_credential(r, token, "x") is not None
                                   for r in self.adapter.read_requests("u0", 1, 0))

    def attempt(self, kind: AttemptKind | None = None) -> tuple | None:
        """One attempt (the next kind of the deck unless given); returns its hostile.csv
        row, or None when the adapter presents no credential to break for it."""
        kind = kind or self.next_kind()
        victim = f"u{self.rng.randrange(max(1, self.users()))}"
        ts = time.time()
        if kind.target == "ws":
            request, result = f"WS {self._ws_name()}", self._ws(kind, victim)
        elif kind.target == "read":
            request, result = self._read(kind, victim)
        else:
            request, result = self._publish(kind, victim)
        if result is None:
            return None
        row = (ts, kind.name, kind.transport, request, victim, result.status, result.outcome, result.detail[:300])
        self.record(row)
        return row

    def _bad(self, mutation: str, valid: str) -> str:
        return MUTATIONS[mutation](valid, self.rng)

    def _ws_name(self) -> str:
        return urlsplit(getattr(self.adapter, "endpoint").ws_url).path or "/"

    def _ws(self, kind: AttemptKind, victim: str) -> Outcome:
        bad = self._bad(kind.mutation, self.token(victim))
        try:
            conn = self.adapter.connect_with_token(victim, bad, self.timeout)  # type: ignore[attr-defined]
        except ConnectFailed as exc:
            code = exc.code
            if code is not None and (400 <= code < 500 or 4000 <= code < 5000 or code == 1008):
                return Outcome(REFUSED, code, f"token {bad!r}: {exc.reason}")
            return Outcome(ERROR, code, f"token {bad!r}: {exc.reason}")
        try:
            if not getattr(self.adapter, "welcome_confirms", False):
                closed = conn.closed_within(CLOSE_PROBE_S)
                if closed is not None:
                    refused = closed.code is not None and (4000 <= closed.code < 5000 or closed.code == 1008)
                    return Outcome(REFUSED if refused else ERROR, closed.code,
                                   f"token {bad!r}: closed after the handshake: {closed.reason}")
                return Outcome(ACCEPTED, 101, f"token {bad!r}: socket kept open {CLOSE_PROBE_S:g} s")
            return Outcome(ACCEPTED, 101, f"token {bad!r}: subscribed as {victim} (welcome received)")
        finally:
            try:
                conn.close()
            except Exception:  # closing is best effort; the acceptance is what counts
                pass

    def _read(self, kind: AttemptKind, victim: str) -> tuple[str, Outcome | None]:
        if kind.mutation == "other-user":
            attacker = f"u{self.rng.randrange(max(2, self.users()) + 1)}"
            if attacker == victim:
                attacker = victim + "x"
            valid, bad = self.token(victim), self.token(attacker)
        else:
            valid = self.token(victim)
            bad = self._bad(kind.mutation, valid)
        for req in self.adapter.read_requests(victim, 1, 0):
            swapped = with_credential(req, valid, bad)
            if swapped is not None:
                path, headers = swapped
                name = req.name or req.path
                return name, self._http(req.method, path, headers, None, f"credential {bad!r}")
        return "", None

    def _publish(self, kind: AttemptKind, victim: str) -> tuple[str, Outcome | None]:
        data = {"key": f"hostile-{self.rng.getrandbits(48):x}", "sent_ts": time.time()}
        req = self.adapter.publish_request(victim, data)
        bad = self._bad(kind.mutation, self.publisher_key)
        swapped = with_credential(req, self.publisher_key, bad)
        if swapped is None:
            return req.name or req.path, None
        path, headers = swapped
        body = json.dumps(req.body, ensure_ascii=False).encode()
        headers = {**headers, "Content-Type": "application/json"}
        return req.name or req.path, self._http(req.method, path, headers, body, f"publisher key {bad!r}")

    def _http(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
              what: str) -> Outcome:
        url = urlsplit(path)
        if url.scheme:
            host, port, target = url.hostname or "", url.port, url.path + (f"?{url.query}" if url.query else "")
            secure = url.scheme == "https"
        else:
            host, port, target = self.base.hostname or "", self.base.port, path
            secure = self.base.scheme == "https"
        cls = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        conn = cls(host, port, timeout=self.timeout)
        try:
            conn.putrequest(method, _ascii_target(target), skip_accept_encoding=True)
            for name, value in headers.items():
                # Raw UTF-8 bytes, as a careless client sends them (http.client would
                # refuse a non-Latin-1 str).
                conn.putheader(name, value.encode("utf-8"))
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            status = resp.status
            text = resp.read(300).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(ERROR, None, f"{what}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()
        detail = f"{what}: HTTP {status} {' '.join(text.split())[:160]}"
        if 200 <= status < 300:
            return Outcome(ACCEPTED, status, detail)
        if 400 <= status < 500:
            return Outcome(REFUSED, status, detail)
        return Outcome(ERROR, status, detail)


def _ascii_target(target: str) -> str:
    """A request target with anything outside ASCII percent-encoded (it is a URL)."""
    return quote(target, safe="/?&=%:@!$'()*+,;~-._")
