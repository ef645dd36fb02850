"""The user's project settings: `gauntlet.toml`, or `[tool.gauntlet]` in pyproject.toml.

```toml
[app]                      # the app under test; default: the reference SUT
command = "python -m myapp --port {port}"
env = { DATABASE_URL = "{database_url}", REDIS_URL = "{redis_url}" }
health = "http"            # http: liveness is any 2xx at health_path; tcp: the port accepts
health_path = "/healthz"   # (http only) polled at start until it answers 2xx
ready_path = "/readyz"     # optional readiness, any 2xx (used at start, by checks and status)
cwd = "."

[app.docker]               # the app as an image, for --backend docker|swarm (optional)
image = "myorg/myapp:1.4"  # each replica is a container of it, listening on {port} (8000)
command = "myapp --port {port}"  # optional: the image's own entrypoint otherwise

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
REFERENCE_COMMAND = "{python} -m sut --host {host} --port {port} --instance {instance} --broker {broker}"
HEALTH_CHECKS = ("http", "tcp")
# Credentials go in the environment, which only the process's owner can read; a
# command line is visible to every local user.
REFERENCE_ENV = {"SUT_SECRET": "{secret}", "SUT_PUBLISHER_KEY": "{publisher_key}",
                 "DATABASE_URL": "{database_url}", "REDIS_URL": "{redis_url}"}


class ConfigError(Exception):
    """The project config is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class AppSpec:
    """How to start one replica of the app under test."""

    command: str = REFERENCE_COMMAND
    env: dict[str, str] = field(default_factory=lambda: dict(REFERENCE_ENV))
    health_path: str = "/api/health"
    ready_path: str | None = "/api/ready"
    # "http": alive when health_path answers any 2xx; "tcp": alive when the port accepts
    # a connection (apps without a health route, e.g. a bare socket.io server).
    health: str = "http"
    cwd: str | None = None
    is_reference: bool = True
    docker_image: str | None = None  # [app.docker] image: what the container backends run
    docker_command: str | None = None  # [app.docker] command template (None: the image's own)

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
    path: str = ""  # the file it came from, absolute ("" for the defaults): every part of a run reads it


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
        return _parse(table, str(file), file.parent, file)
    file = cwd / "gauntlet.toml"
    if file.exists():
        return _parse(_read_toml(file), str(file), cwd, file)
    pyproject = cwd / "pyproject.toml"
    if pyproject.exists():
        table = _read_toml(pyproject).get("tool", {}).get("gauntlet")
        if table:
            return _parse(table, f"{pyproject} [tool.gauntlet]", cwd, pyproject)
    return ProjectConfig()


def _read_toml(file: Path) -> dict:
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None


def _parse(table: dict, source: str, base: Path, file: Path) -> ProjectConfig:
    known = {"app", "load", "slo"}
    for key in table:
        if key not in known:
            raise ConfigError(f"{source}: unknown section [{key}]; known: {', '.join(sorted(known))}")
    app = _parse_app(table.get("app", {}), source, base)
    load = table.get("load", {})
    from scenarios.config import LoadConfigError, check_load_table

    try:
        check_load_table(load, source)
    except LoadConfigError as exc:
        raise ConfigError(str(exc)) from None
    slo_table = table.get("slo", {})
    if not isinstance(slo_table, dict):
        raise ConfigError(f"{source}: [slo] must be a table with `thresholds = [...]`")
    thresholds = slo_table.get("thresholds", [])
    if not isinstance(thresholds, list) or not all(isinstance(t, str) for t in thresholds):
        raise ConfigError(f"{source}: slo.thresholds must be a list of strings")
    return ProjectConfig(app=app, load=dict(load), slo=tuple(thresholds), source=source,
                         path=str(file.resolve()))


def _parse_app(raw: Any, source: str, base: Path) -> AppSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [app] must be a table")
    if not raw:
        return AppSpec()
    allowed = {"command", "env", "health", "health_path", "ready_path", "cwd", "docker"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{source}: unknown key app.{key}; known: {', '.join(sorted(allowed))}")
    docker_image, docker_command = _parse_app_docker(raw.get("docker"), source)
    command = raw.get("command")
    if command is None and docker_image is not None:
        command = ""  # an image-only app: it runs on the container backends only
    elif not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{source}: app.command is required and must be a string, e.g. \"python -m myapp --port {{port}}\"")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{source}: app.env must be a table of strings")
    probe = {p: "x" for p in PLACEHOLDERS}
    try:
        AppSpec(command=command, env=dict(env), is_reference=False).render(probe)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if command and "{port}" not in command and not any("{port}" in v for v in env.values()):
        raise ConfigError(f"{source}: app.command or app.env must use {{port}}: each replica gets its own port")
    check = raw.get("health", "http")
    if check not in HEALTH_CHECKS:
        raise ConfigError(f"{source}: app.health must be one of {', '.join(HEALTH_CHECKS)}, not {check!r}")
    if check == "tcp" and "health_path" in raw:
        raise ConfigError(f"{source}: app.health_path is for health = \"http\"; with \"tcp\" the port is the check")
    health = raw.get("health_path", "/health")
    ready = raw.get("ready_path")
    for key, value in (("health_path", health), ("ready_path", ready)):
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise ConfigError(f"{source}: app.{key} must be a path starting with '/'")
    cwd = raw.get("cwd")
    cwd_path = str((base / cwd).resolve()) if isinstance(cwd, str) else str(base.resolve())
    return AppSpec(command=command, env=dict(env), health_path=health, ready_path=ready, health=check,
                   cwd=cwd_path, is_reference=False, docker_image=docker_image, docker_command=docker_command)


def _parse_app_docker(raw: Any, source: str) -> tuple[str | None, str | None]:
    """`[app.docker]`: image (required there) and an optional command template."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [app.docker] must be a table with image = \"...\"")
    for key in raw:
        if key not in ("image", "command"):
            raise ConfigError(f"{source}: unknown key app.docker.{key}; known: command, image")
    image, command = raw.get("image"), raw.get("command")
    if not isinstance(image, str) or not image.strip():
        raise ConfigError(f"{source}: app.docker.image is required and must be a string, e.g. \"myorg/myapp:1.4\"")
    if command is not None:
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"{source}: app.docker.command must be a non-empty string")
        try:
            _fill(command, {p: "x" for p in PLACEHOLDERS}, "app.docker.command")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return image.strip(), command
