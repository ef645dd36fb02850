"""Records of distributed runs: one run directory on the master, whatever the machines.

At test start the master writes a nonce into `<run_dir>/records/.master` and sends
`gauntlet_hello` (run dir, nonce, seed, target) to every worker, ahead of the spawn
messages on the same ordered channel. A worker that can read that nonce shares the
master's filesystem (`--processes`, or a shared mount) and writes its records there
directly. Any other worker records locally and, at its test stop, ships its files
to the master in zlib chunks over Locust's message channel (`gauntlet_records`),
then `gauntlet_records_done` with the sizes. The master writes them under
`records/w<index>/` as `.part` files and renames them only when the sizes match, so a
half-shipped file never looks complete. Keys are `<worker>-<seq>` and each worker has
one directory, so the reader merges directories without loss or double counting.

The master's test stop waits (bounded by --ship-timeout) until every worker it
greeted reported done: in a `-t` headless run the master quits right after, and a
shipment still in flight would be lost.

The hello carries the stack's secret and publisher key, so the master hands it only
to workers that proved they hold the stack's token: on connect it sends each worker a
nonce (`gauntlet_challenge`), the worker answers HMAC-SHA256(token, nonce:node id)
(`gauntlet_auth`), and a worker that answers wrong, or not before the test starts, is
dropped from the run (no users, no hello, told to quit). The token is
$GAUNTLET_WORKER_TOKEN, else the stack state's control token, else one drawn when the
locustfile is imported, which the `--processes` workers inherit through fork.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gevent

from common.records import KINDS

log = logging.getLogger("gauntlet.load")

HELLO = "gauntlet_hello"
SHIP = "gauntlet_ship"
CHUNK = "gauntlet_records"
DONE = "gauntlet_records_done"
POOL = "gauntlet_pool"
CHALLENGE = "gauntlet_challenge"
CHALLENGE_ME = "gauntlet_challenge_me"  # a worker whose handlers are now in place asks again
AUTH = "gauntlet_auth"
TOKEN_ENV = "GAUNTLET_WORKER_TOKEN"
AUTH_WAIT = 10.0  # how long test start waits for workers still answering their challenge
# Drawn at import, before Locust forks its --processes workers: they inherit it.
_PROCESS_TOKEN = secrets.token_hex(16)
NONCE_FILE = ".master"
CHUNK_BYTES = 512 * 1024
SHIPPABLE = tuple(f"{kind}.csv" for kind in KINDS) + ("meta.json",)
_WORKER_NAME = re.compile(r"^w\d{1,6}$")


@dataclass(frozen=True)
class Hello:
    """What the master tells every worker before it spawns users."""

    cycle: int
    run_dir: str
    nonce: str
    seed: int
    workers: int
    subscribers: int
    http_url: str
    ws_url: str
    secret: str
    publisher_key: str
    replicas: list[str]

    def to_msg(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_msg(cls, data: dict[str, Any]) -> "Hello":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def worker_token(state_path: str) -> str:
    """The token workers prove they hold: $GAUNTLET_WORKER_TOKEN, else the stack's
    control token (from the state file), else this process tree's own."""
    explicit = os.environ.get(TOKEN_ENV, "")
    if explicit:
        return explicit
    from common.state import StateError, load_state

    try:
        token = load_state(state_path or None).control_token
    except StateError:
        token = ""
    return token or _PROCESS_TOKEN


def ask_for_challenge(runner: Any) -> None:
    runner.send_message(CHALLENGE_ME, None)


def auth_mac(token: str, nonce: str, node_id: str) -> str:
    return hmac.new(token.encode(), f"{nonce}:{node_id}".encode(), hashlib.sha256).hexdigest()


def answer_challenge(runner: Any, token: str, data: Any) -> None:
    """Worker side: prove the token without sending it."""
    nonce = str((data or {}).get("nonce", "")) if isinstance(data, dict) else ""
    runner.send_message(AUTH, {"mac": auth_mac(token, nonce, runner.client_id)})


def write_nonce(run_dir: Path) -> str:
    records = run_dir / "records"
    records.mkdir(parents=True, exist_ok=True)
    nonce = secrets.token_hex(16)
    (records / NONCE_FILE).write_text(nonce)
    return nonce


def shares_master_dir(hello: Hello) -> bool:
    try:
        return (Path(hello.run_dir) / "records" / NONCE_FILE).read_text() == hello.nonce
    except OSError:
        return False


# -- worker side ------------------------------------------------------------------------


def ship_records(runner: Any, directory: Path, cycle: int) -> dict[str, int]:
    """Send every record file of this worker to the master; returns sizes shipped."""
    sizes: dict[str, int] = {}
    sent = 0
    for name in SHIPPABLE:
        path = directory / name
        if not path.exists():
            continue
        offset = 0
        with open(path, "rb") as fh:
            while True:
                block = fh.read(CHUNK_BYTES)
                if not block and offset > 0:
                    break
                runner.send_message(CHUNK, {"cycle": cycle, "file": name, "offset": offset,
                                            "data": zlib.compress(block, 1)})
                offset += len(block)
                sent += 1
                if sent % 16 == 0:
                    gevent.sleep(0)  # let heartbeats through on a long shipment
                if not block:
                    break
        sizes[name] = offset
    runner.send_message(DONE, {"cycle": cycle, "shipped": True, "files": sizes})
    return sizes


def report_shared(runner: Any, cycle: int) -> None:
    runner.send_message(DONE, {"cycle": cycle, "shipped": False, "files": {}})


# -- master side ------------------------------------------------------------------------


class RecordsReceiver:
    """Master side: greet workers, take shipments, wait for all of them at stop."""

    def __init__(self, runner: Any, run_dir: Path, ship_timeout: float, token: str = "") -> None:
        self.runner = runner
        self.run_dir = run_dir
        self.ship_timeout = ship_timeout
        self.token = token or _PROCESS_TOKEN
        self.trusted: set[str] = set()
        self.challenges: dict[str, list[str]] = {}  # node id -> nonces issued (the latest few)
        self.cycle = 0
        self.nonce = ""
        self.expected: dict[str, str] = {}  # node id -> worker name, for this cycle
        self.done: dict[str, dict[str, Any]] = {}
        self._open: dict[tuple[str, str], Any] = {}
        self._absent_since: dict[str, float] = {}
        runner.register_message(CHUNK, self.on_chunk)
        runner.register_message(DONE, self.on_done)
        runner.register_message(AUTH, self.on_auth)
        # A worker connects (and Locust fires worker_connect) before its locustfile's init
        # has registered our handlers, so it may drop that first challenge: it asks again.
        runner.register_message(CHALLENGE_ME, lambda environment, msg: self.on_connect(msg.node_id))
        runner.environment.events.worker_connect.add_listener(self.on_connect)

    # -- worker authentication ----------------------------------------------------------

    def on_connect(self, client_id: str, **_: Any) -> None:
        nonce = secrets.token_hex(16)
        # Every challenge issued stays answerable: an honest worker may answer the one
        # Locust's connect triggered and the one it asked for, in either order.
        self.challenges[client_id] = [*self.challenges.get(client_id, [])[-3:], nonce]
        self.runner.send_message(CHALLENGE, {"nonce": nonce}, client_id=client_id)

    def on_auth(self, environment: Any, msg: Any) -> None:
        given = msg.data.get("mac", "") if isinstance(msg.data, dict) else ""
        given_bytes = given.encode("utf-8", "replace") if isinstance(given, str) else b""
        ok = [hmac.compare_digest(given_bytes, auth_mac(self.token, n, msg.node_id).encode())
              for n in self.challenges.get(msg.node_id, [])]
        if any(ok):
            self.trusted.add(msg.node_id)
        elif msg.node_id not in self.trusted:
            self.evict(msg.node_id, "its answer to the challenge does not prove the stack's token")

    def evict(self, node_id: str, why: str) -> None:
        """Drop a worker from the run, the way Locust drops one that quits."""
        if node_id not in self.runner.clients and node_id not in self.challenges:
            return  # dropped already (a second wrong answer arrives after the first)
        self.challenges.pop(node_id, None)
        self.trusted.discard(node_id)
        log.error("gauntlet: refusing worker %s: %s (set %s on it, or give it the stack's state file)",
                  node_id, why, TOKEN_ENV)
        if node_id in self.runner.clients:
            try:
                self.runner.send_message("quit", None, client_id=node_id)
            except Exception as exc:  # it may be gone already
                log.debug("quit to %s failed: %s", node_id, exc)
            # What Locust does for a worker that quits, short of stopping the test when it
            # was the last one: an impostor must not be able to end an honest run.
            client = self.runner.clients[node_id]
            del self.runner.clients[node_id]
            dispatcher = getattr(self.runner, "_users_dispatcher", None)
            if dispatcher is not None:
                dispatcher.remove_worker(client)

    def trusted_workers(self) -> list[str]:
        """At test start: wait (bounded) for pending answers, evict the silent, list the rest."""
        deadline = time.monotonic() + AUTH_WAIT
        while time.monotonic() < deadline and any(c.id not in self.trusted for c in self.runner.clients.all):
            gevent.sleep(0.05)
        for client in list(self.runner.clients.all):
            if client.id not in self.trusted:
                self.evict(client.id, f"no answer to the challenge within {AUTH_WAIT:g}s")
        return [c.id for c in self.runner.clients.all if c.id in self.trusted]

    def worker_name(self, node_id: str) -> str:
        return f"w{self.runner.get_worker_index(node_id)}"

    def greet(self, hello_fields: dict[str, Any]) -> None:
        """At test start: new cycle, nonce file, hello to every connected worker."""
        self.cycle += 1
        self.nonce = write_nonce(self.run_dir)
        self.done = {}
        self.expected = {node_id: self.worker_name(node_id) for node_id in self.trusted_workers()}
        hello = Hello(cycle=self.cycle, run_dir=str(self.run_dir), nonce=self.nonce,
                      workers=max(1, len(self.expected)), **hello_fields)
        for node_id in self.expected:
            self.runner.send_message(HELLO, hello.to_msg(), client_id=node_id)

    def on_chunk(self, environment: Any, msg: Any) -> None:
        if msg.node_id not in self.trusted:
            log.warning("ignoring records from %s, which did not prove the stack's token", msg.node_id)
            return
        data = msg.data
        name = data.get("file")
        if name not in SHIPPABLE:
            log.warning("ignoring shipped file %r from %s", name, msg.node_id)
            return
        worker = self.worker_name(msg.node_id)
        directory = self.run_dir / "records" / worker
        directory.mkdir(parents=True, exist_ok=True)
        key = (msg.node_id, name)
        fh = self._open.get(key)
        if fh is None or data["offset"] == 0:
            if fh is not None:
                fh.close()
            fh = open(directory / f"{name}.part", "wb")
            self._open[key] = fh
        fh.seek(data["offset"])
        fh.write(zlib.decompress(data["data"]))

    def on_done(self, environment: Any, msg: Any) -> None:
        if msg.node_id not in self.trusted:
            return
        data = msg.data
        worker = self.worker_name(msg.node_id)
        directory = self.run_dir / "records" / worker
        problems = []
        for name, size in (data.get("files") or {}).items():
            fh = self._open.pop((msg.node_id, name), None)
            if fh is not None:
                fh.close()
            part = directory / f"{name}.part"
            if name not in SHIPPABLE or not part.exists():
                problems.append(f"{name}: missing")
                continue
            if part.stat().st_size != size:
                problems.append(f"{name}: {part.stat().st_size} of {size} bytes")
                continue
            part.replace(directory / name)
        if problems:
            log.error("records from %s (%s) are incomplete: %s", worker, msg.node_id, "; ".join(problems))
        elif data.get("shipped"):
            log.info("records from %s received into %s", worker, directory)
        self.done[msg.node_id] = {"cycle": data.get("cycle"), "problems": problems}

    def wait_all(self) -> list[str]:
        """At test stop: ask for records and wait until every greeted worker is done.
        Returns the workers that did not report in time."""
        for node_id in self.expected:
            if node_id not in self.done:
                try:
                    self.runner.send_message(SHIP, {"cycle": self.cycle}, client_id=node_id)
                except Exception as exc:  # a worker that went away cannot answer anyway
                    log.debug("ship request to %s failed: %s", node_id, exc)
        deadline = time.monotonic() + self.ship_timeout
        while time.monotonic() < deadline:
            missing = [n for n in self.expected if n not in self.done]
            if not missing:
                return []
            known = {c.id for c in self.runner.clients.all}
            gone = [n for n in missing if n not in known and self._absent_long(n)]
            if len(gone) == len(missing):
                break
            gevent.sleep(0.1)
        missing = [self.expected[n] for n in self.expected if n not in self.done]
        if missing:
            log.error("no records from %s within --ship-timeout; their records stay on their machines",
                      ", ".join(missing))
        return missing

    def _absent_long(self, node_id: str, grace: float = 10.0) -> bool:
        now = time.monotonic()
        since = self._absent_since.setdefault(node_id, now)
        return now - since > grace
