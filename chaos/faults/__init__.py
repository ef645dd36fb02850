"""The fault catalogue: one small class per fault, by the name users write.

    from chaos.faults import CATALOGUE
    fault = CATALOGUE["partition"].build("r2", {"dependency": "redis"}, topology)
    fault.inject(stack); ...; fault.heal(stack)     # or through chaos.injector.Injector

Kinds by what they hit:
- a replica process: kill, terminate, pause, restart
- a dependency's traffic through the fault proxies: latency, bandwidth, blackhole,
  reset, slow-close, down; and partition (one replica from one dependency)
- a dependency's server process: crash; its data: flush (Redis)

What a dependency fault looks like to the app (refused, closed, hang, data kept or
lost) is the contract in chaos/faults/contract.py.
- the load balancer and the replica set: drain, rolling-restart, scale-out, scale-in
"""

from __future__ import annotations

from chaos.faults.bandwidth import Bandwidth
from chaos.faults.base import Fault, FaultError, ParamSpec
from chaos.faults.blackhole import Blackhole
from chaos.faults.crash import Crash
from chaos.faults.down import Down
from chaos.faults.drain import Drain
from chaos.faults.flush import Flush
from chaos.faults.kill import Kill
from chaos.faults.latency import Latency
from chaos.faults.partition import Partition
from chaos.faults.pause import Pause
from chaos.faults.reset import Reset
from chaos.faults.restart import Restart
from chaos.faults.rolling_restart import RollingRestart
from chaos.faults.scale import ScaleIn, ScaleOut
from chaos.faults.slow_close import SlowClose
from chaos.faults.terminate import Terminate

CATALOGUE: dict[str, type[Fault]] = {cls.kind: cls for cls in (
    Kill, Terminate, Pause, Restart,
    Latency, Bandwidth, Blackhole, Reset, SlowClose, Down, Partition,
    Crash, Flush,
    Drain, RollingRestart, ScaleOut, ScaleIn,
)}


def fault_class(kind: str) -> type[Fault]:
    try:
        return CATALOGUE[kind]
    except KeyError:
        raise ValueError(f"unknown fault {kind!r} (known: {', '.join(CATALOGUE)})") from None


def describe_catalogue() -> str:
    """The catalogue as `gauntlet chaos list` prints it."""
    out = []
    for kind, cls in CATALOGUE.items():
        out.append(f"{kind:<16}{cls.summary}")
        out.append(f"{'':<16}target: {cls.target_help}")
        out += [f"{'':<16}  {line}" for line in cls.param_lines()]
        if cls.app_sees:
            out.append(f"{'':<16}the app sees: {cls.app_sees}")
        out.append(f"{'':<16}heal: {cls.heals}" + ("" if cls.sustained else "  [action: no --for]"))
    return "\n".join(out)


__all__ = ["CATALOGUE", "Fault", "FaultError", "ParamSpec", "describe_catalogue", "fault_class"]
