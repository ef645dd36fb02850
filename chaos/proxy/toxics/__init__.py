"""The toxic catalogue, by Toxiproxy type name. One module per toxic; `syn_drop` is
gauntlet's own (Toxiproxy cannot make a connect hang)."""

from __future__ import annotations

from .bandwidth import BandwidthToxic
from .base import BadAttribute, CleanupToxic, StatefulToxic, Stub, Toxic, apply_attributes, attributes_of
from .latency import LatencyToxic
from .limit_data import LimitDataToxic
from .noop import NoopToxic
from .reset_peer import ResetPeerToxic
from .slicer import SlicerToxic
from .slow_close import SlowCloseToxic
from .syn_drop import SynDropToxic
from .timeout import TimeoutToxic

TOXIC_TYPES: dict[str, type] = {
    "latency": LatencyToxic,
    "bandwidth": BandwidthToxic,
    "slow_close": SlowCloseToxic,
    "timeout": TimeoutToxic,
    "reset_peer": ResetPeerToxic,
    "slicer": SlicerToxic,
    "limit_data": LimitDataToxic,
    "noop": NoopToxic,
    "syn_drop": SynDropToxic,
}


def new_toxic(type_name: str) -> Toxic | None:
    """A toxic with default attributes, or None for a type we do not know."""
    cls = TOXIC_TYPES.get(type_name)
    return cls() if cls is not None else None


__all__ = [
    "TOXIC_TYPES",
    "BadAttribute",
    "CleanupToxic",
    "StatefulToxic",
    "Stub",
    "Toxic",
    "apply_attributes",
    "attributes_of",
    "new_toxic",
]
