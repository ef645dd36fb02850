"""The raw load record schema (DESIGN contract 2): the column lists of every record
file, the single definition for the recorders that write them (scenarios, harness) and
the readers that check them (reports/records.py). See docs/architecture.md.
"""

from __future__ import annotations

HTTP_COLUMNS = ("ts", "name", "method", "status", "dur_ms", "ok", "instance", "error")
PUB_COLUMNS = (
    "key", "kind", "user", "ts_intended", "ts_sent", "ts_ack",
    "outcome", "status", "id", "instance", "error",
)
RECV_COLUMNS = ("ts", "sub", "user", "conn", "instance", "key", "id", "origin", "sent_ts", "replay", "intact")
CONN_COLUMNS = ("ts", "sub", "user", "conn", "event", "instance", "code", "detail")
USERS_COLUMNS = ("ts", "users", "sockets")
# One per hostile attempt (scenarios/hostile.py): outcome accepted | refused | error.
HOSTILE_COLUMNS = ("ts", "kind", "transport", "request", "user", "status", "outcome", "detail")
# The load process's own health, once a second: its CPU (cores) and how late its event
# loop ran timers (a probe sleeping a fixed time and measuring the overshoot).
LOADGEN_COLUMNS = ("ts", "cpu", "lag_mean_ms", "lag_max_ms")

# Run-level records written by the harness's resource sampler (not per load process):
# resources.csv, one row per component per sample: CPU in cores over the interval
# ending at ts (summed over the component's processes; cpu_max = its busiest process),
# resident memory in MB. Rows "machine" (all cores) and "other" (machine minus the
# run's processes: other users and kernel work) give the conditions.
RESOURCE_COLUMNS = ("ts", "component", "kind", "processes", "cpu", "cpu_max", "rss_mb")
# dependency_connections.csv: each replica's open connections to each dependency.
DEP_CONN_COLUMNS = ("ts", "replica", "dependency", "connections", "source")
RESOURCES_FILE = "resources.csv"
DEP_CONN_FILE = "dependency_connections.csv"

KINDS: dict[str, tuple[str, ...]] = {
    "http": HTTP_COLUMNS,
    "pub": PUB_COLUMNS,
    "recv": RECV_COLUMNS,
    "conn": CONN_COLUMNS,
    "users": USERS_COLUMNS,
    "loadgen": LOADGEN_COLUMNS,
    "hostile": HOSTILE_COLUMNS,
}
# Record kinds of the run directory itself, by file name.
RUN_KINDS: dict[str, tuple[str, ...]] = {
    "resources": RESOURCE_COLUMNS,
    "dep_conns": DEP_CONN_COLUMNS,
}
RUN_FILES = {"resources": RESOURCES_FILE, "dep_conns": DEP_CONN_FILE}

# Columns added after the first runs were recorded: a file without them reads as all
# empty (recv.intact: 1/0 whether a padded payload arrived unchanged, scenarios/payload.py).
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"recv": ("intact",)}

# A shaped subscriber (scenarios/shapes.py: slow, stalled, vanishing) says so in the
# detail of each of its connect events, with how long frames may sit unread in it.
SHAPE_PREFIX = "shape="


def shape_detail(name: str, slack: float) -> str:
    return f"{SHAPE_PREFIX}{name} slack={slack:g}"


def parse_shape_detail(detail: str) -> tuple[str, float]:
    """(shape name, slack seconds) from a connect detail written by shape_detail()."""
    words = detail.removeprefix(SHAPE_PREFIX).split()
    slack = 0.0
    for word in words[1:]:
        if word.startswith("slack="):
            try:
                slack = max(0.0, float(word[6:]))
            except ValueError:
                pass
    return (words[0] if words else "?"), slack


PUBLISH_OUTCOMES = ("ok", "fail", "unknown")
CONN_EVENTS = ("connect", "disconnect", "connect_fail", "resume", "stop")  # stop: ended while not connected
FAULT_OUTCOMES = ("active", "ok", "inject_failed", "heal_failed", "interrupted")
