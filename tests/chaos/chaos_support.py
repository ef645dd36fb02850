"""Helpers shared by the chaos suite (sized for CI: about 30 s of load per test)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pandas as pd

# Load used by most tests: 40 users (32 WebSocket subscribers, 4 publishers at 10
# messages/s each, 4 readers), users u0..u19 so most users have more than one
# subscriber, about 100 deliveries per second.
USERS = 40
PUBLISH_RATE = 10
USER_POOL = 20


def standard_load(load, seconds: float = 24, *, scenario: str = "ramp", users: int = USERS,
                  extra: tuple[str, ...] = ()) -> None:
    load.start(scenario, stages=f"3s:{users},{seconds - 3:g}s:{users}",
               args=["--publish-rate", str(PUBLISH_RATE), "--user-pool", str(USER_POOL), *extra])


def status_of(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def counts(checked) -> dict:
    return checked.check("delivery").details["counts"]


def phase(checked, name: str) -> dict:
    for row in checked.check("delivery").details["by_phase"]:
        if row["phase"] == name:
            return row
    raise AssertionError(f"no {name!r} phase in the delivery check")


def in_window(frame: pd.DataFrame, column: str, start: float, end: float) -> pd.DataFrame:
    return frame[(frame[column] >= start) & (frame[column] <= end)]


def assert_steady_order(checked) -> None:
    """Real-time order held outside faults and their heal windows: the reference SUT
    promises it there (in a fault, a catch-up legitimately delivers older messages
    behind newer live ones), so any steady-state violation is a defect."""
    realtime = checked.check("delivery").details["order"]["realtime"]
    assert realtime["checked"] and realtime["judged"] > 0, f"real-time order was not judged: {realtime['reason']}"
    assert realtime["by_phase"].get("steady", 0) == 0, \
        f"{realtime['by_phase']['steady']} deliveries out of real-time order in steady state: {realtime['examples'][:3]}"
