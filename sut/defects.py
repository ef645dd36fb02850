"""Deliberate defects: negative controls that prove gauntlet's checks can fail.

Each defect is off by default, switched on by name (`--defects a,b` or SUT_DEFECTS),
and applied at exactly one place in the code, which cites the field it reads:

- `no-broker-reconnect` (brokers/supervisor.py): after the first drop the broker stays
  down; nothing published afterwards reaches this replica's sockets live.
- `no-catchup` (fanout.py): the broker reconnects but skips the catch-up from Postgres,
  so whatever was published while it was down is lost for live subscribers.
- `drop-fanout-1pct` (fanout.py): 1 % of the messages received from the broker are
  silently dropped (seeded, so a run is repeatable).
- `dup-catchup` (fanout.py): catch-up skips the duplicate filter and also re-sends a
  window of already delivered messages, so duplicates are certain.
- `ignore-sigterm` (shutdown.py): SIGTERM is ignored; only SIGKILL stops the replica.
- `exit-on-sigterm` (shutdown.py): SIGTERM exits the process at once, dropping every
  request in flight and every socket without a close frame.
- `accept-any-token` (auth.py): a token's MAC and the publisher key are not checked;
  any token naming a well-formed user subscribes and reads as that user, any bearer
  credential publishes (a missing one is still refused).
- `reorder-fanout` (fanout.py): every 20th message received from the broker is held
  back 0.5 s while the ones after it go on, so subscribers receive it behind messages
  sent after it was acknowledged (real-time order broken; nothing lost, nothing late).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

NAMES = {
    "no-broker-reconnect": "no_broker_reconnect",
    "no-catchup": "no_catchup",
    "drop-fanout-1pct": "drop_fanout_1pct",
    "dup-catchup": "dup_catchup",
    "ignore-sigterm": "ignore_sigterm",
    "reorder-fanout": "reorder_fanout",
    "accept-any-token": "accept_any_token",
    "exit-on-sigterm": "exit_on_sigterm",
}

# Fraction dropped by `drop-fanout-1pct`, and how many already delivered ids before the
# low watermark `dup-catchup` sends again.
DROP_FANOUT_RATE = 0.01
DUP_CATCHUP_WINDOW = 100
# `reorder-fanout`: which broker messages are held back, and for how long (well under
# the report's 1 s late threshold, so order is the only check it breaks).
REORDER_EVERY = 20
REORDER_HOLD_S = 0.5


@dataclass(frozen=True)
class Defects:
    no_broker_reconnect: bool = False
    no_catchup: bool = False
    drop_fanout_1pct: bool = False
    dup_catchup: bool = False
    ignore_sigterm: bool = False
    reorder_fanout: bool = False
    accept_any_token: bool = False
    exit_on_sigterm: bool = False

    @property
    def names(self) -> list[str]:
        by_field = {v: k for k, v in NAMES.items()}
        return [by_field[f.name] for f in fields(self) if getattr(self, f.name)]


def parse_defects(text: str) -> Defects:
    """`"no-catchup, dup-catchup"` -> Defects; ValueError naming an unknown defect."""
    enabled: dict[str, bool] = {}
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in NAMES:
            raise ValueError(f"unknown defect {name!r}; known: {', '.join(NAMES)}")
        enabled[NAMES[name]] = True
    return Defects(**enabled)
