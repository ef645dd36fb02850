"""The `[load]` table of the project config (gauntlet.toml, or [tool.gauntlet] in pyproject).

```toml
[load]
adapter = "jsonws"            # reference (default) | jsonws | socketio
[load.jsonws]                 # settings of the chosen adapter, see scenarios/adapters
ws_url = "{ws_base}/stream?token={token}"
```
Read here rather than through the harness so a locustfile needs nothing but this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ADAPTER = "reference"


class LoadConfigError(ValueError):
    """The [load] table is unusable; the message names the file and key."""


@dataclass(frozen=True)
class LoadConfig:
    adapter: str = DEFAULT_ADAPTER
    adapter_settings: dict[str, Any] = field(default_factory=dict)
    secret: str = ""
    publisher_key: str = ""
    source: str = "(defaults)"


def _read(file: Path) -> dict:
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LoadConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise LoadConfigError(f"{file}: cannot read: {exc.strerror}") from None


def _find(explicit: str) -> tuple[dict, str]:
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


def load_config(explicit: str = "", adapter_override: str = "") -> LoadConfig:
    """The [load] table, with the adapter name from `--adapter` winning over the file."""
    table, source = _find(explicit)
    if not isinstance(table, dict):
        raise LoadConfigError(f"{source}: [load] must be a table")
    from scenarios.adapters import ADAPTERS

    known = {"adapter", "secret", "publisher_key", *ADAPTERS}
    unknown = sorted(k for k in table if k not in known)
    if unknown:
        raise LoadConfigError(f"{source}: unknown key load.{unknown[0]}; known: {', '.join(sorted(known))}")
    name = adapter_override or table.get("adapter", DEFAULT_ADAPTER)
    if not isinstance(name, str) or not name:
        raise LoadConfigError(f"{source}: load.adapter must be an adapter name, e.g. \"reference\"")
    settings = table.get(name, {})
    if not isinstance(settings, dict):
        raise LoadConfigError(f"{source}: [load.{name}] must be a table")
    for key in ("secret", "publisher_key"):
        if key in table and not isinstance(table[key], str):
            raise LoadConfigError(f"{source}: load.{key} must be a string")
    return LoadConfig(
        adapter=name,
        adapter_settings=dict(settings),
        secret=table.get("secret", ""),
        publisher_key=table.get("publisher_key", ""),
        source=source,
    )
