"""Dependency faults on a real stack of the reference SUT behind the fault proxy:
partition, latency, down, crash, flush; a failed inject; heal of everything."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from fault_support import Subscriber, broadcast, build, get, wait_for

from chaos.heal import heal_everything
from chaos.journal import Journal, read_journal
from chaos.toxiproxy_client import ToxiproxyClient

pytestmark = pytest.mark.integration  # the fault catalogue itself; `-m chaos` is the SUT under load


@pytest.fixture(scope="module")
def stack(module_stacks):
    return module_stacks(replicas=3, broker="redis")


@pytest.fixture
def proxy(stack):
    return ToxiproxyClient(stack.proxy.api_url)


def ready(stack, name: str, timeout: float = 5.0) -> int:
    return get(stack.replicas[name].url + "/api/ready", timeout)[0]


def all_ready(stack) -> bool:
    return all(ready(stack, n) == 200 for n in stack.replicas)


def assert_proxies_clean(proxy: ToxiproxyClient) -> None:
    dirty = {p.name: (p.enabled, [t.name for t in p.toxics]) for p in proxy.proxies().values()
             if p.toxics or not p.enabled}
    assert not dirty, f"proxies left dirty: {dirty}"


def test_partition_r2_from_redis_makes_only_r2_unready_and_loses_nothing_acknowledged(stack, handle, injector, proxy):
    state = stack.state()
    subs = [Subscriber(r.url, state.secret, f"sub-{r.name}-{k}") for r in state.replicas for k in range(2)]
    try:
        acked: dict[str, str] = {}

        def publish(prefix: str, n: int) -> None:
            for i in range(n):
                status, _ = broadcast(state.lb_url, state.publisher_key, f"{prefix}-{i}")
                if status == 201:
                    acked[f"{prefix}-{i}"] = prefix

        publish("before", 5)
        injection = injector.inject(build("partition", "r2", handle, dependency="redis"))
        assert not proxy.get_proxy("redis-r2").enabled and proxy.get_proxy("redis-r1").enabled
        wait_for(lambda: ready(stack, "r2") == 503, 10, "r2 to report unready")
        assert ready(stack, "r1") == 200 and ready(stack, "r3") == 200, "only r2 is cut off"
        publish("during", 30)
        time.sleep(1.0)
        r2_subs = [s for s in subs if s.instance == "r2"]
        missing_on_r2 = {k for k in acked if k.startswith("during") for s in r2_subs if not s.keys()[k]}
        assert missing_on_r2, "while partitioned, r2's subscribers miss fan-out from the other replicas"
        assert injector.heal(injection).outcome == "ok"
        wait_for(lambda: ready(stack, "r2") == 200, 15, "r2 to be ready again")
        publish("after", 5)
        assert len(acked) >= 35, "most publishes are acknowledged (r1 and r3 keep working)"
        wait_for(lambda: all(s.keys()[k] for s in subs for k in acked), 20,
                 "every acknowledged notification to reach every subscriber after heal")
        assert all(count == 1 for s in subs for count in s.keys().values()), "no duplicates"
    finally:
        for sub in subs:
            sub.close()
    record = read_journal(stack.run_dir / "faults.jsonl")[-1]
    assert (record.kind, record.target, record.params["dependency"], record.outcome) == \
        ("partition", "r2", "redis", "ok")


def test_crash_postgres_makes_publishes_fail_fast_and_recover_after_heal(stack, handle, injector):
    state = stack.state()
    assert broadcast(state.lb_url, state.publisher_key, "pg-before")[0] == 201
    pid = stack.postgres.pid
    injection = injector.inject(build("crash", "postgres", handle))
    assert not stack.postgres.alive()
    results = [broadcast(state.lb_url, state.publisher_key, f"pg-down-{i}", timeout=10) for i in range(5)]
    assert max(took for _, took in results) < 3.0, f"publishes must fail fast, not hang: {results}"
    assert all(status == 503 for status, _ in results), f"publishes must fail with 503: {results}"
    injector.heal(injection)
    assert stack.postgres.alive() and stack.postgres.pid != pid
    wait_for(lambda: broadcast(state.lb_url, state.publisher_key, "pg-after")[0] == 201, 20,
             "publishes to succeed after Postgres is back")
    wait_for(lambda: all_ready(stack), 20, "every replica ready again")


def test_crash_redis_without_its_data_refuses_every_replica_then_the_sut_recovers(stack, handle, injector, proxy):
    state = stack.state()
    direct = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    subs = [Subscriber(r.url, state.secret, f"sub-crash-{r.name}") for r in state.replicas]
    try:
        direct.set("gauntlet:before-crash", "1")
        injection = injector.inject(build("crash", "redis", handle, data="lost"))
        assert injection.inject_error is None, injection.inject_error
        assert injection.fault.disabled == ["redis-r1", "redis-r2", "redis-r3"]
        assert not stack.redis.alive() and not any(p.enabled for n, p in proxy.proxies().items() if "redis" in n)
        wait_for(lambda: all(ready(stack, n) == 503 for n in stack.replicas), 10, "every replica unready")
        assert injector.heal(injection).outcome == "ok"
        assert stack.redis.alive() and all(p.enabled for p in proxy.proxies().values())
        assert direct.get("gauntlet:before-crash") is None, "data=lost: Redis came back empty"
        wait_for(lambda: all_ready(stack), 20, "every replica ready again after the crash")
        acked = [f"after-crash-{i}" for i in range(5) if broadcast(state.lb_url, state.publisher_key,
                                                                  f"after-crash-{i}")[0] == 201]
        assert len(acked) == 5
        wait_for(lambda: all(s.keys()[k] for s in subs for k in acked), 20,
                 "fan-out through the restarted Redis to every replica's subscribers")
    finally:
        direct.close()
        for sub in subs:
            sub.close()
    record = read_journal(stack.run_dir / "faults.jsonl")[-1]
    assert (record.kind, record.params["data"], record.outcome) == ("crash", "lost", "ok")


def test_crash_redis_keeps_its_data_by_default_with_the_append_only_file(stack, handle, injector):
    direct = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    try:
        direct.set("gauntlet:kept", "1")
        fault = build("crash", "redis", handle)
        assert fault.data == "kept", "the stack's Redis writes an append-only file"
        injector.heal(injector.inject(fault))
        assert direct.get("gauntlet:kept") == b"1"
    finally:
        direct.close()
    wait_for(lambda: all_ready(stack), 20, "every replica ready again")


def test_flush_empties_redis_under_the_running_app_and_is_journalled(stack, handle, injector):
    state = stack.state()
    direct = redis.Redis.from_url(stack.redis.url, socket_timeout=5)
    subs = [Subscriber(r.url, state.secret, f"sub-flush-{r.name}") for r in state.replicas]
    try:
        direct.mset({f"gauntlet:flush-{i}": i for i in range(7)})
        before = direct.dbsize()
        injection = injector.inject(build("flush", "broker", handle))
        assert injection.inject_error is None and injection.fault.keys == before >= 7
        assert direct.dbsize() == 0
        assert stack.redis.alive() and all_ready(stack), "nothing restarts, nothing goes unready"
        acked = [f"after-flush-{i}" for i in range(3) if broadcast(state.lb_url, state.publisher_key,
                                                                  f"after-flush-{i}")[0] == 201]
        wait_for(lambda: all(s.keys()[k] for s in subs for k in acked), 10,
                 "pub/sub subscriptions survive a flush")
        assert len(acked) == 3
        assert injector.heal(injection).outcome == "ok"
    finally:
        direct.close()
        for sub in subs:
            sub.close()
    record = read_journal(stack.run_dir / "faults.jsonl")[-1]
    assert (record.kind, record.target, record.outcome) == ("flush", "redis", "ok")
    assert record.end is not None and record.end - record.start < 5


def test_latency_on_one_replicas_redis_slows_only_that_replica(stack, handle, injector):
    def timed_ready(name: str) -> float:
        t0 = time.monotonic()
        assert ready(stack, name) == 200
        return time.monotonic() - t0

    assert timed_ready("r1") < 0.3
    injection = injector.inject(build("latency", "redis@r1", handle, latency="400ms", stream="both"))
    assert len(injection.fault.toxics) == 2
    assert timed_ready("r1") >= 0.4, "the readiness check's Redis round trip is delayed"
    assert timed_ready("r3") < 0.3, "other replicas are not"
    injector.heal(injection)
    assert timed_ready("r1") < 0.3


def test_down_redis_makes_every_replica_unready_until_heal(stack, handle, injector, proxy):
    injection = injector.inject(build("down", "redis", handle))
    assert injection.fault.disabled == ["redis-r1", "redis-r2", "redis-r3"]
    wait_for(lambda: all(ready(stack, n) == 503 for n in stack.replicas), 10, "every replica unready")
    injector.heal(injection)
    assert_proxies_clean(proxy)
    wait_for(lambda: all_ready(stack), 15, "every replica ready again")


def test_heal_everything_restores_a_clean_stack_from_any_mess(stack, handle, proxy):
    """No journal, no fault objects: the sweep alone must undo it all."""
    proxy.add_toxic("postgres-r1", "latency", {"latency": 1000}, name="stray")
    proxy.disable("redis-r3")
    stack.drain("r2")
    os.kill(stack.replicas["r1"].pid, signal.SIGSTOP)
    stack.crash_dependency("redis")
    stack.signal_replica("r3", signal.SIGKILL)
    wait_for(lambda: not stack.replicas["r3"].alive(), 5, "r3 to die")
    done = heal_everything(handle, Journal.in_run_dir(stack.run_dir))
    assert any("reset the fault proxy" in d for d in done) and "undrained r2" in done
    assert "restarted redis" in done and "restarted r3" in done
    assert_proxies_clean(proxy)
    assert not stack.drained and stack.redis.alive() and stack.replicas["r3"].alive()
    wait_for(lambda: all_ready(stack), 20, "every replica ready (r1 continued, not stopped)")
    assert heal_everything(handle) == [], "a clean stack needs nothing"


def test_failed_inject_is_journalled_and_still_healed(stack, handle, injector, proxy):
    """A partition on a replica whose proxy is gone: inject fails, heal still runs, the stack stays clean."""
    saved = proxy.get_proxy("redis-r3")
    proxy.delete_proxy("redis-r3")
    try:
        injection = injector.inject(build("partition", "r3", handle, dependency="redis"))
        assert injection.inject_error and "redis-r3" in injection.inject_error
        record = injector.heal(injection)
        assert record.outcome == "inject_failed" and record.end is not None and "redis-r3" in record.error
        assert_proxies_clean(proxy)
        assert ready(stack, "r1") == 200
    finally:
        proxy.create_proxy(saved.name, saved.upstream, listen=saved.listen)
    wait_for(lambda: all_ready(stack), 15, "r3 to reach Redis again")
    last = read_journal(stack.run_dir / "faults.jsonl")[-1]
    assert (last.kind, last.outcome) == ("partition", "inject_failed")


@pytest.mark.parametrize("kind,params,toxic_type,attributes,streams", [
    ("latency", {"latency": "150ms", "jitter": "20ms"}, "latency", {"latency": 150, "jitter": 20}, ["downstream"]),
    ("bandwidth", {"rate": 50, "stream": "upstream"}, "bandwidth", {"rate": 50}, ["upstream"]),
    ("blackhole", {}, "timeout", {"timeout": 0}, ["downstream", "upstream"]),
    ("reset", {"after": "1s", "toxicity": 0.5}, "reset_peer", {"timeout": 1000}, ["downstream"]),
    ("slow-close", {"delay": "500ms"}, "slow_close", {"delay": 500}, ["downstream"]),
])
def test_toxic_faults_put_exactly_their_toxics_on_the_targeted_proxies(stack, handle, injector, proxy, kind, params,
                                                                       toxic_type, attributes, streams):
    injection = injector.inject(build(kind, "postgres@r2", handle, **params))
    assert injection.inject_error is None
    toxics = [t for t in proxy.get_proxy("postgres-r2").toxics if t.type != "syn_drop"]
    connects = [t for t in proxy.get_proxy("postgres-r2").toxics if t.type == "syn_drop"]
    assert len(connects) == (kind == "blackhole"), "only a blackhole makes new connects hang"
    assert sorted(t.stream for t in toxics) == streams
    for toxic in toxics:
        assert toxic.type == toxic_type and toxic.name.startswith(f"gauntlet-{injection.record.id}-{kind}-")
        assert {k: toxic.attributes[k] for k in attributes} == attributes
        assert toxic.toxicity == params.get("toxicity", 1.0)
    assert not proxy.get_proxy("postgres-r1").toxics, "only r2's connection"
    injector.heal(injection)
    assert_proxies_clean(proxy)


def test_blackhole_hangs_the_replicas_database_calls_until_heal(stack, handle, injector):
    injection = injector.inject(build("blackhole", "postgres@r1", handle))
    # The readiness check gives the database 1 s, then answers 503; 0 (no answer within
    # 10 s) means the endpoint hung on the database, which still leaves r1 out of rotation.
    status = ready(stack, "r1", timeout=10)
    assert status in (503, 0), f"readiness must notice a database that never answers: status {status}"
    assert ready(stack, "r2") == 200
    injector.heal(injection)
    wait_for(lambda: ready(stack, "r1") == 200, 15, "r1 ready after heal")


def test_partition_in_blackhole_mode_drops_traffic_both_ways_on_one_proxy(stack, handle, injector, proxy):
    injection = injector.inject(build("partition", "r1", handle, dependency="postgres", mode="blackhole"))
    toxics = proxy.get_proxy("postgres-r1").toxics
    assert sorted((t.type, t.stream, t.attributes.get("timeout")) for t in toxics) == \
        [("syn_drop", "downstream", None), ("timeout", "downstream", 0), ("timeout", "upstream", 0)]
    assert injection.fault.connects == "hang"
    assert proxy.get_proxy("postgres-r1").enabled, "blackhole keeps the proxy up: connections hang, not refused"
    assert not proxy.get_proxy("postgres-r2").toxics
    injector.heal(injection)
    assert_proxies_clean(proxy)
    wait_for(lambda: ready(stack, "r1") == 200, 15, "r1 ready after heal")
