"""The few fault-proxy operations faults share, over the typed Toxiproxy client.

Heals must be idempotent and must survive what happened meanwhile: a toxic already
gone, or a proxy deleted because its replica was scaled in, answers 404, which for a
heal means "nothing left to undo".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chaos.faults.base import FaultError
from chaos.target import StackHandle
from chaos.toxiproxy_client import ToxiproxyClient, ToxiproxyError

NOT_FOUND = 404
# The embedded proxy's version suffix: it alone can make connects hang (`syn_drop`).
EMBEDDED_PROXY = "+gauntlet"


def proxy_client(stack: StackHandle) -> ToxiproxyClient:
    url = stack.proxy_api_url()
    if not url:
        raise FaultError("this stack runs without fault proxies (--no-fault-proxies): dependency faults need them")
    return ToxiproxyClient(url)


def toxic_name(fault_id: str, kind: str, stream: str) -> str:
    # The journal id makes the name unique, so faults by two people on one proxy never clash.
    return f"gauntlet-{fault_id or kind}-{kind}-{stream}"


def remove_toxics(client: ToxiproxyClient, toxics: list[list[str]]) -> None:
    """Remove [proxy, toxic] pairs; each one removed (or already gone) leaves the list."""
    errors = []
    for pair in list(toxics):
        proxy, name = pair
        try:
            client.remove_toxic(proxy, name)
        except ToxiproxyError as exc:
            if exc.status != NOT_FOUND:
                errors.append(f"{proxy}/{name}: {exc.message}")
                continue
        toxics.remove(pair)
    if errors:
        raise FaultError("could not remove toxics: " + "; ".join(errors))


def set_enabled(client: ToxiproxyClient, proxies: Iterable[str], enabled: bool) -> None:
    errors = []
    for proxy in proxies:
        try:
            client.update_proxy(proxy, enabled=enabled)
        except ToxiproxyError as exc:
            if exc.status == NOT_FOUND and enabled:
                continue  # deleted meanwhile (its replica was removed): nothing to re-enable
            errors.append(f"{proxy}: {exc.message}")
    if errors:
        raise FaultError(("could not enable " if enabled else "could not disable ") + "; ".join(errors))


def add_toxics(client: ToxiproxyClient, toxics: list[list[str]], proxies: Iterable[str], streams: Iterable[str], *,
               fault_id: str, kind: str, toxic_type: str, attributes: Mapping[str, int],
               toxicity: float = 1.0) -> None:
    """Add one toxic per proxy and stream, each recorded in `toxics` as [proxy, name]."""
    streams = tuple(streams)
    for proxy in proxies:
        for stream in streams:
            name = toxic_name(fault_id, kind, stream)
            # Recorded before the call: a lost response must not leave an unhealed toxic.
            toxics.append([proxy, name])
            client.add_toxic(proxy, toxic_type, attributes, name=name, stream=stream, toxicity=toxicity)


def drop_connects(client: ToxiproxyClient, toxics: list[list[str]], proxies: Iterable[str], *,
                  fault_id: str, kind: str) -> bool:
    """Make new connects to `proxies` hang, as behind a partition (the embedded proxy's
    `syn_drop` toxic, recorded in `toxics` for heal). A real Toxiproxy cannot: it accepts
    and the connection hangs afterwards; False then, for the journal to say so."""
    if not client.version().endswith(EMBEDDED_PROXY):
        return False
    add_toxics(client, toxics, proxies, ("downstream",), fault_id=fault_id, kind=f"{kind}-connects",
               toxic_type="syn_drop", attributes={})
    return True


def disable(client: ToxiproxyClient, proxies: Iterable[str], disabled: list[str]) -> None:
    """Disable each proxy, recorded in `disabled` before the call for the same reason."""
    for proxy in proxies:
        disabled.append(proxy)
        set_enabled(client, [proxy], False)


def disable_enabled(client: ToxiproxyClient, proxies: Iterable[str], disabled: list[str]) -> None:
    """Disable the proxies that are enabled, recording only those: one that another fault
    disabled stays that fault's to enable again."""
    current = client.proxies()
    disable(client, [p for p in proxies if p in current and current[p].enabled], disabled)


def enable_again(client: ToxiproxyClient, disabled: list[str]) -> None:
    """Undo `disable`: enable what it recorded, and forget it once that worked."""
    if disabled:
        set_enabled(client, disabled, True)
        disabled.clear()
