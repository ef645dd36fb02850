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
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gevent

from reports.records import KINDS

log = logging.getLogger("gauntlet.load")

HELLO = "gauntlet_hello"
SHIP = "gauntlet_ship"
CHUNK = "gauntlet_records"
DONE = "gauntlet_records_done"
POOL = "gauntlet_pool"
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
    allow_remote: bool

    def to_msg(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_msg(cls, data: dict[str, Any]) -> "Hello":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


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

    def __init__(self, runner: Any, run_dir: Path, ship_timeout: float) -> None:
        self.runner = runner
        self.run_dir = run_dir
        self.ship_timeout = ship_timeout
        self.cycle = 0
        self.nonce = ""
        self.expected: dict[str, str] = {}  # node id -> worker name, for this cycle
        self.done: dict[str, dict[str, Any]] = {}
        self._open: dict[tuple[str, str], Any] = {}
        self._absent_since: dict[str, float] = {}
        runner.register_message(CHUNK, self.on_chunk)
        runner.register_message(DONE, self.on_done)

    def worker_name(self, node_id: str) -> str:
        return f"w{self.runner.get_worker_index(node_id)}"

    def greet(self, hello_fields: dict[str, Any]) -> None:
        """At test start: new cycle, nonce file, hello to every connected worker."""
        self.cycle += 1
        self.nonce = write_nonce(self.run_dir)
        self.done = {}
        self.expected = {c.id: self.worker_name(c.id) for c in self.runner.clients.all}
        hello = Hello(cycle=self.cycle, run_dir=str(self.run_dir), nonce=self.nonce,
                      workers=max(1, len(self.expected)), **hello_fields)
        for node_id in self.expected:
            self.runner.send_message(HELLO, hello.to_msg(), client_id=node_id)

    def on_chunk(self, environment: Any, msg: Any) -> None:
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
