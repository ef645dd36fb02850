"""Replica settings from the command line, each with an environment-variable fallback.

A bad setting raises `ConfigError` with one line naming the option; `sut.main` prints
it and exits 2, so an operator never reads a traceback for a typo.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sut.defects import Defects, parse_defects

BROKERS = ("postgres", "redis", "memory", "redis-streams")
# Brokers that run over Redis and so need --redis-url.
REDIS_BROKERS = ("redis", "redis-streams")
INSTANCE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class ConfigError(Exception):
    """The replica cannot start with these settings; the message names the option."""


@dataclass(frozen=True)
class Config:
    port: int
    instance: str
    broker: str
    database_url: str
    redis_url: str | None
    secret: str
    publisher_key: str
    defects: Defects
    host: str = "127.0.0.1"
    db_pool_size: int = 5
    max_body_bytes: int = 256 * 1024
    db_timeout: float = 2.0
    shutdown_timeout: float = 10.0
    items: int = 1000
    log_level: str = "info"
    stream_maxlen: int = 50_000


# (flag, env var, default, help); one table so the flag, the env name and the
# `--help` text cannot drift apart.
_OPTIONS: tuple[tuple[str, str, str | None, str], ...] = (
    ("--port", "SUT_PORT", None, "TCP port to listen on (required)"),
    ("--host", "SUT_HOST", "127.0.0.1", "address to bind (default 127.0.0.1)"),
    ("--instance", "SUT_INSTANCE", None, "replica name, e.g. r1 (required)"),
    ("--broker", "SUT_BROKER", "postgres", f"fan-out broker: {', '.join(BROKERS)}"),
    ("--database-url", "DATABASE_URL", None, "postgresql://user@host:port/db (required)"),
    ("--redis-url", "REDIS_URL", None,
     "redis://host:port/0 (required for --broker redis and redis-streams; enables the item cache)"),
    ("--secret", "SUT_SECRET", None, "HMAC secret for user tokens (required)"),
    ("--publisher-key", "SUT_PUBLISHER_KEY", None, "bearer key that may publish (required)"),
    ("--defects", "SUT_DEFECTS", "", "comma list of deliberate defects (negative controls)"),
    ("--db-pool-size", "SUT_DB_POOL_SIZE", "5", "database connections per replica"),
    ("--max-body-bytes", "SUT_MAX_BODY_BYTES", str(256 * 1024), "largest accepted request body"),
    ("--db-timeout", "SUT_DB_TIMEOUT", "2.0", "seconds a request may wait for the database"),
    ("--shutdown-timeout", "SUT_SHUTDOWN_TIMEOUT", "10.0", "seconds before a graceful shutdown is forced"),
    ("--items", "SUT_ITEMS", "1000", "rows seeded into the items table"),
    ("--log-level", "SUT_LOG_LEVEL", "info", "debug, info, warning, error"),
    ("--stream-maxlen", "SUT_STREAM_MAXLEN", "50000",
     "redis-streams: entries the stream keeps (XADD MAXLEN ~); a replica away for longer "
     "than this many publishes catches up from Postgres"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit itself; keep one error path
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sut",
        description="gauntlet reference system under test: one replica.",
        epilog="Every option can also come from the environment variable shown in brackets.",
    )
    for flag, env, _, text in _OPTIONS:
        parser.add_argument(flag, default=None, help=f"{text} [{env}]")
    return parser


def load_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    args = vars(_parser().parse_args(argv))
    raw: dict[str, str | None] = {}
    for flag, env, default, _ in _OPTIONS:
        key = flag[2:].replace("-", "_")
        value = args.get(key)
        if value is None:
            value = environ.get(env) or default
        raw[key] = value

    def required(key: str) -> str:
        value = raw[key]
        if not value:
            flag = "--" + key.replace("_", "-")
            env = next(e for f, e, _, _ in _OPTIONS if f == flag)
            raise ConfigError(f"{flag} is required (or set {env})")
        return value

    port = _int(required("port"), "--port", 1, 65535)
    instance = required("instance")
    if not INSTANCE_RE.match(instance):
        raise ConfigError(f"--instance {instance!r}: use 1-32 letters, digits, '.', '_' or '-'")
    broker = required("broker")
    if broker not in BROKERS:
        raise ConfigError(f"--broker {broker!r}: choose one of {', '.join(BROKERS)}")
    database_url = required("database_url")
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--database-url must start with postgresql://, got {database_url!r}")
    redis_url = raw["redis_url"] or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--redis-url must start with redis://, got {redis_url!r}")
    if broker in REDIS_BROKERS and redis_url is None:
        raise ConfigError(f"--broker {broker} needs --redis-url (or REDIS_URL)")
    try:
        defects = parse_defects(raw["defects"] or "")
    except ValueError as exc:
        raise ConfigError(f"--defects: {exc}") from None
    log_level = (raw["log_level"] or "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level {log_level!r}: choose debug, info, warning or error")
    return Config(
        port=port,
        instance=instance,
        broker=broker,
        database_url=database_url,
        redis_url=redis_url,
        secret=required("secret"),
        publisher_key=required("publisher_key"),
        defects=defects,
        host=required("host"),
        db_pool_size=_int(required("db_pool_size"), "--db-pool-size", 1, 1000),
        max_body_bytes=_int(required("max_body_bytes"), "--max-body-bytes", 1, 1 << 30),
        db_timeout=_float(required("db_timeout"), "--db-timeout", 0.1, 60.0),
        shutdown_timeout=_float(required("shutdown_timeout"), "--shutdown-timeout", 0.5, 600.0),
        items=_int(required("items"), "--items", 0, 10_000_000),
        log_level=log_level,
        stream_maxlen=_int(required("stream_maxlen"), "--stream-maxlen", 100, 100_000_000),
    )


def _int(text: str, flag: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be between {low} and {high}, got {value}")
    return value


def _float(text: str, flag: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number of seconds, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be between {low} and {high}, got {value}")
    return value
