"""syn_drop (gauntlet's own, not Toxiproxy's): new connections hang, open ones flow.

While a proxy has a toxic of this type, its listener drops the SYN of every new
connection (chaos/proxy/held.py), so connects hang until the client's timeout, as
behind a network partition; removing it lets clients connect again. Data on
connections already open passes untouched (add `timeout` 0 for those). Stream and
toxicity do not apply: the listener is the proxy's, not a connection's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Stub

TYPE = "syn_drop"


@dataclass
class SynDropToxic:
    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            stub.write(chunk)
