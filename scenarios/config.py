"""The `[load]` table of the project config (gauntlet.toml, or [tool.gauntlet] in pyproject).

```toml
[load]
adapter = "jsonws"            # reference (default) | jsonws | socketio
broadcast_ratio = 0.2         # any load setting (scenarios/settings.py CONFIG_KEYS) ...
stages = "10s:50,40s:50"      # ... is the default the command line overrides
[load.jsonws]                 # settings of the chosen adapter, see scenarios/adapters
ws_url = "{ws_base}/stream?token={token}"
```

Which file: `--gauntlet-config` (GAUNTLET_CONFIG), else the one the running stack was
brought up with (its state file names it), else ./gauntlet.toml, else pyproject.toml.
Read here rather than through the harness so a locustfile needs nothing but this file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ADAPTER = "reference"
# The keys of [load] that are not load settings.
TABLE_KEYS = ("adapter", "secret", "publisher_key")


class LoadConfigError(ValueError):
    """The [load] table is unusable; the message names the file and key."""


@dataclass(frozen=True)
class LoadConfig:
    adapter: str = DEFAULT_ADAPTER
    adapter_settings: dict[str, Any] = field(default_factory=dict)
    secret: str = ""
    publisher_key: str = ""
    source: str = "(defaults)"
    settings: dict[str, Any] = field(default_factory=dict)  # load settings from the table, as written


def _read(file: Path) -> dict:
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LoadConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise LoadConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise LoadConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None


def stack_config(state_path: str = "") -> str | None:
    """The config file the running stack was brought up with: a path, "" when it ran
    without one (the reference SUT), None when no stack (or an older state) says."""
    from common.state import StateError, load_state

    try:
        state = load_state(state_path or None)
    except StateError:
        return None
    value = state.spec.get("config")
    return value if isinstance(value, str) else None


def _find(explicit: str, state_path: str = "") -> tuple[dict, str]:
    if not explicit:
        recorded = stack_config(state_path)
        if recorded == "":
            return {}, "(defaults: the running stack has no project config)"
        if recorded and Path(recorded).exists():  # else the project moved: the working directory's
            explicit = recorded
    if explicit:
        file = Path(explicit)
        if not file.exists():
            raise LoadConfigError(f"config file {file} does not exist")
        table = _read(file)
        if file.name == "pyproject.toml":
            table = table.get("tool", {}).get("gauntlet", {})
        return table.get("load", {}), str(file)
    file = Path("gauntlet.toml")
    if file.exists():
        return _read(file).get("load", {}), str(file)
    pyproject = Path("pyproject.toml")
    if pyproject.exists():
        table = _read(pyproject).get("tool", {}).get("gauntlet", {})
        if table.get("load"):
            return table["load"], f"{pyproject} [tool.gauntlet]"
    return {}, "(defaults)"


def check_load_table(table: Any, source: str, *, adapters: bool = True) -> None:
    """Every key known and every value usable, before anything starts.

    Raises LoadConfigError naming the file and key; with `adapters`, the chosen
    adapter's own table is checked by building the adapter (it names the setting)."""
    from scenarios.adapters import ADAPTERS
    from scenarios.settings import COMMAND_LINE_ONLY, CONFIG_KEYS, SettingsError, config_value

    if not isinstance(table, dict):
        raise LoadConfigError(f"{source}: [load] must be a table")
    for key in table:
        if key in COMMAND_LINE_ONLY:
            raise LoadConfigError(f"{source}: load.{key} cannot be set in the config; give {COMMAND_LINE_ONLY[key]}")
    known = {*TABLE_KEYS, *ADAPTERS, *CONFIG_KEYS}
    unknown = sorted(k for k in table if k not in known)
    if unknown:
        raise LoadConfigError(f"{source}: unknown key load.{unknown[0]}; known: {', '.join(TABLE_KEYS)}, "
                              f"the adapter tables {', '.join(ADAPTERS)}, "
                              f"and the load settings {', '.join(sorted(CONFIG_KEYS))}")
    for key in ("secret", "publisher_key"):
        if key in table and not isinstance(table[key], str):
            raise LoadConfigError(f"{source}: load.{key} must be a string")
    name = table.get("adapter", DEFAULT_ADAPTER)
    if not isinstance(name, str) or not name:
        raise LoadConfigError(f"{source}: load.adapter must be an adapter name, e.g. \"reference\"")
    for adapter in ADAPTERS:
        if adapter in table and not isinstance(table[adapter], dict):
            raise LoadConfigError(f"{source}: [load.{adapter}] must be a table")
    try:
        for key, value in table.items():
            if key in CONFIG_KEYS:
                config_value(key, value, f"{source}: load.{key}")
        # The ranges: the same checks as on the command line.
        from scenarios.settings import parse_args

        parse_args([], table, source)
    except SettingsError as exc:
        raise LoadConfigError(str(exc) if str(exc).startswith(source) else f"{source}: [load]: {exc}") from None
    if adapters:
        _check_adapter(name, table.get(name, {}), source)


def _check_adapter(name: str, settings: dict, source: str) -> None:
    from scenarios.adapters import AdapterError, Endpoint, make_adapter

    probe = Endpoint("http://127.0.0.1:1", "ws://127.0.0.1:1/ws", secret="x", publisher_key="x")
    try:
        make_adapter(name, probe, settings)
    except AdapterError as exc:
        raise LoadConfigError(f"{source}: {exc}") from None


def load_config(explicit: str = "", adapter_override: str = "", state_path: str = "") -> LoadConfig:
    """The [load] table, with the adapter name from `--adapter` winning over the file."""
    table, source = _find(explicit, state_path)
    check_load_table(table, source, adapters=False)
    name = adapter_override or table.get("adapter", DEFAULT_ADAPTER)
    settings = table.get(name, {})
    if not isinstance(settings, dict):
        raise LoadConfigError(f"{source}: [load.{name}] must be a table")
    from scenarios.settings import CONFIG_KEYS

    return LoadConfig(
        adapter=name,
        adapter_settings=dict(settings),
        secret=table.get("secret", ""),
        publisher_key=table.get("publisher_key", ""),
        source=source,
        settings={k: v for k, v in table.items() if k in CONFIG_KEYS},
    )


def _pending_arguments(argv: list[str]) -> tuple[str, str]:
    """--gauntlet-config and --state from a command line Locust has not parsed yet."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--gauntlet-config", default=os.environ.get("GAUNTLET_CONFIG", ""))
    pre.add_argument("--state", default="")
    known, _ = pre.parse_known_args(argv)
    return known.gauntlet_config or "", known.state or ""


def config_defaults(argv: list[str] | None = None) -> dict[str, object]:
    """Argument defaults from the [load] table of the config this command line will use.

    Called while Locust builds its parser, so --help and the web UI show them. A broken
    config gives no defaults here: the same error stops the start, one line, at init."""
    from scenarios.settings import SettingsError, config_overrides

    explicit, state = _pending_arguments(sys.argv[1:] if argv is None else argv)
    try:
        table, source = _find(explicit, state)
        if not isinstance(table, dict):
            return {}
        return config_overrides(table, source)
    except (LoadConfigError, SettingsError):
        return {}
