"""The user's project settings: `gauntlet.toml`, or `[tool.gauntlet]` in pyproject.toml.

```toml
[app]                      # the app under test; default: the reference SUT
command = "python -m myapp --port {port}"
env = { DATABASE_URL = "{database_url}", REDIS_URL = "{redis_url}" }
health_path = "/healthz"   # liveness, polled until 200 at start
ready_path = "/readyz"     # optional readiness (used by checks and status)
cwd = "."

[load]                     # how the load generator talks to the app (scenarios/adapters)
adapter = "reference"

[slo]                      # latency targets (k6-like thresholds)
thresholds = ["http_req_duration: p(95)<500"]
```
Placeholders in command and env: {port} {instance} {host} {broker} {database_url}
{redis_url} {secret} {publisher_key} {python}.
"""

from __future__ import annotations

import string
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLACEHOLDERS = (
    "port", "instance", "host", "broker", "database_url", "redis_url", "secret", "publisher_key", "python",
)
REFERENCE_COMMAND = (
    "{python} -m sut --host {host} --port {port} --instance {instance} --broker {broker} "
    "--database-url {database_url} --redis-url {redis_url}"
)
REFERENCE_ENV = {"SUT_SECRET": "{secret}", "SUT_PUBLISHER_KEY": "{publisher_key}"}


class ConfigError(Exception):
    """The project config is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class AppSpec:
    """How to start one replica of the app under test."""

    command: str = REFERENCE_COMMAND
    env: dict[str, str] = field(default_factory=lambda: dict(REFERENCE_ENV))
    health_path: str = "/api/health"
    ready_path: str | None = "/api/ready"
    cwd: str | None = None
    is_reference: bool = True

    def render(self, values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The argv and extra env for one replica, placeholders filled in."""
        import shlex

        argv = shlex.split(_fill(self.command, values, "app.command"))
        env = {k: _fill(v, values, f"app.env.{k}") for k, v in self.env.items()}
        return argv, env


@dataclass(frozen=True)
class ProjectConfig:
    app: AppSpec = field(default_factory=AppSpec)
    load: dict[str, Any] = field(default_factory=dict)
    slo: tuple[str, ...] = ()
    source: str = "(defaults)"


def _fill(template: str, values: dict[str, str], where: str) -> str:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: bad template {template!r}: {exc}") from None
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholder {{{unknown[0]}}} in {template!r}; "
            f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        )
    return template.format(**values)


def reference_values() -> dict[str, str]:
    return {"python": sys.executable}


def load_project_config(path: str | Path | None = None, cwd: Path | None = None) -> ProjectConfig:
    """Read gauntlet.toml (or pyproject's [tool.gauntlet]); defaults when neither exists."""
    cwd = cwd or Path.cwd()
    if path is not None:
        file = Path(path)
        if not file.exists():
            raise ConfigError(f"config file {file} does not exist")
        table = _read_toml(file)
        if file.name == "pyproject.toml":
            table = table.get("tool", {}).get("gauntlet", {})
        return _parse(table, str(file), file.parent)
    file = cwd / "gauntlet.toml"
    if file.exists():
        return _parse(_read_toml(file), str(file), cwd)
    pyproject = cwd / "pyproject.toml"
    if pyproject.exists():
        table = _read_toml(pyproject).get("tool", {}).get("gauntlet")
        if table:
            return _parse(table, f"{pyproject} [tool.gauntlet]", cwd)
    return ProjectConfig()


def _read_toml(file: Path) -> dict:
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None


def _parse(table: dict, source: str, base: Path) -> ProjectConfig:
    known = {"app", "load", "slo"}
    for key in table:
        if key not in known:
            raise ConfigError(f"{source}: unknown section [{key}]; known: {', '.join(sorted(known))}")
    app = _parse_app(table.get("app", {}), source, base)
    load = table.get("load", {})
    if not isinstance(load, dict):
        raise ConfigError(f"{source}: [load] must be a table")
    slo_table = table.get("slo", {})
    if not isinstance(slo_table, dict):
        raise ConfigError(f"{source}: [slo] must be a table with `thresholds = [...]`")
    thresholds = slo_table.get("thresholds", [])
    if not isinstance(thresholds, list) or not all(isinstance(t, str) for t in thresholds):
        raise ConfigError(f"{source}: slo.thresholds must be a list of strings")
    return ProjectConfig(app=app, load=dict(load), slo=tuple(thresholds), source=source)


def _parse_app(raw: Any, source: str, base: Path) -> AppSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [app] must be a table")
    if not raw:
        return AppSpec()
    allowed = {"command", "env", "health_path", "ready_path", "cwd"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{source}: unknown key app.{key}; known: {', '.join(sorted(allowed))}")
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{source}: app.command is required and must be a string, e.g. \"python -m myapp --port {{port}}\"")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{source}: app.env must be a table of strings")
    probe = {p: "x" for p in PLACEHOLDERS}
    try:
        AppSpec(command=command, env=dict(env), is_reference=False).render(probe)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if "{port}" not in command and not any("{port}" in v for v in env.values()):
        raise ConfigError(f"{source}: app.command or app.env must use {{port}}: each replica gets its own port")
    health = raw.get("health_path", "/health")
    ready = raw.get("ready_path")
    for key, value in (("health_path", health), ("ready_path", ready)):
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise ConfigError(f"{source}: app.{key} must be a path starting with '/'")
    cwd = raw.get("cwd")
    cwd_path = str((base / cwd).resolve()) if isinstance(cwd, str) else str(base.resolve())
    return AppSpec(command=command, env=dict(env), health_path=health, ready_path=ready,
                   cwd=cwd_path, is_reference=False)
