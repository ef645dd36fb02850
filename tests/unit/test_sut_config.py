"""The reference SUT's settings: flags, environment fallbacks, and clear errors."""

from __future__ import annotations

import pytest

from sut.config import ConfigError, load_config
from sut.defects import Defects, parse_defects

BASE = ["--port", "8001", "--instance", "r1", "--database-url", "postgresql://u@127.0.0.1:5432/db",
        "--secret", "s", "--publisher-key", "k"]


def test_flags_and_defaults():
    config = load_config(BASE, environ={})
    assert (config.port, config.instance, config.broker, config.host) == (8001, "r1", "postgres", "127.0.0.1")
    assert config.redis_url is None and config.db_pool_size == 5 and config.max_body_bytes == 256 * 1024
    assert config.defects == Defects()


def test_every_option_has_an_environment_fallback_and_flags_win():
    env = {
        "SUT_PORT": "9000", "SUT_INSTANCE": "r7", "SUT_BROKER": "redis", "DATABASE_URL": "postgres://x/y",
        "REDIS_URL": "redis://127.0.0.1:6379/0", "SUT_SECRET": "sec", "SUT_PUBLISHER_KEY": "pk",
        "SUT_DEFECTS": "no-catchup, dup-catchup", "SUT_DB_POOL_SIZE": "2", "SUT_HOST": "127.0.0.2",
    }
    config = load_config([], environ=env)
    assert (config.port, config.instance, config.broker, config.redis_url) == (
        9000, "r7", "redis", "redis://127.0.0.1:6379/0")
    assert config.defects.no_catchup and config.defects.dup_catchup and not config.defects.ignore_sigterm
    assert config.defects.names == ["no-catchup", "dup-catchup"]
    assert (config.db_pool_size, config.host, config.secret, config.publisher_key) == (2, "127.0.0.2", "sec", "pk")
    assert load_config(["--port", "9001"], environ=env).port == 9001


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "--port must be between 1 and 65535"),
    (["--instance", "r 1"], "--instance 'r 1'"),
    (["--broker", "nats"], "choose one of postgres, redis, memory"),
    (["--broker", "redis"], "--broker redis needs --redis-url"),
    (["--database-url", "mysql://x"], "--database-url must start with postgresql://"),
    (["--redis-url", "http://x"], "--redis-url must start with redis://"),
    (["--defects", "no-catchup,nope"], "unknown defect 'nope'"),
    (["--db-pool-size", "many"], "--db-pool-size must be an integer"),
    (["--db-timeout", "-1"], "--db-timeout must be between"),
    (["--what"], "unrecognized arguments"),
])
def test_bad_settings_name_the_option(args, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(BASE + args, environ={})


def test_missing_secret_is_an_error_not_a_default():
    with pytest.raises(ConfigError, match="--secret is required"):
        load_config(["--port", "1", "--instance", "r1", "--database-url", "postgresql://x/y",
                     "--publisher-key", "k"], environ={})


def test_defect_names():
    assert parse_defects("") == Defects()
    assert parse_defects(" IGNORE-SIGTERM ,, drop-fanout-1pct").names == ["drop-fanout-1pct", "ignore-sigterm"]
    with pytest.raises(ValueError, match="known: no-broker-reconnect"):
        parse_defects("no-reconnect")
