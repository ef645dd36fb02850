"""Property-based tests of every parser that takes user input: for any input, a
correct result or the parser's own error with a message, never another exception
(which would reach the user as a traceback or a 500).

Each property also checks correctness on inputs built to be valid (what goes in
comes out). The example counts are fixed (no deadline, derandomized), so the suite's
wall time stays put; docs/hardening.md lists them.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.proxy import bodies
from chaos.proxy.errors import ApiError
from chaos.timeline import TimelineError, load_timeline, parse_timeline
from harness.config import ConfigError, load_project_config
from common.units import format_duration, parse_duration
from reports.thresholds import ThresholdError
from reports.thresholds import parse as parse_threshold
from scenarios.config import LoadConfigError, load_config
from scenarios.stages import StagesError, parse_stages
from sut.auth import bearer, is_publisher, user_token, verify_user_token

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(PROPERTY, max_examples=150)

# Text a user might type, weighted towards the characters these grammars use.
GRAMMAR = st.lists(st.sampled_from(list("0123456789.:,;<>=!()[]{}_-+ smhpavgrtecoun%\"'\\\n\t")
                                   + ["ms", "p(", "é", "\u20ac", "\x00", "\ud800", "http_req_duration",
                                      "ws_delivery_latency", "p(95)", "30s:100"]), max_size=20).map("".join)
ANY_TEXT = st.one_of(GRAMMAR, st.text(max_size=40))
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)


# -- durations and stages ------------------------------------------------------------------

@PROPERTY
@given(ANY_TEXT)
def test_any_duration_text_parses_or_names_itself(text):
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert str(exc).startswith("invalid duration"), exc
    else:
        assert seconds >= 0


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h"])), min_size=1, max_size=3))
def test_a_written_duration_is_the_sum_of_its_parts(parts):
    factor = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == pytest.approx(sum(n * factor[u] for n, u in parts))


@PROPERTY
@given(st.floats(0, 10 * 86400, allow_nan=False))
def test_format_duration_reads_back(seconds):
    back = parse_duration(format_duration(seconds))
    assert back == pytest.approx(seconds, abs=0.5 if seconds < 1 else 0.5001)


@PROPERTY
@given(ANY_TEXT)
def test_any_stages_text_parses_or_names_the_bad_stage(text):
    try:
        stages = parse_stages(text)
    except StagesError as exc:
        assert str(exc).startswith("invalid --stages"), exc
    else:
        assert stages and sum(s.duration for s in stages) > 0


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 3600), st.integers(0, 1_000_000)), min_size=1, max_size=8)
       .filter(lambda stages: sum(d for d, _ in stages) > 0))
def test_written_stages_come_back_as_written(stages):
    parsed = parse_stages(",".join(f"{d}s:{u}" for d, u in stages))
    assert [(s.duration, s.target) for s in parsed] == [(float(d), u) for d, u in stages]


# -- threshold expressions -------------------------------------------------------------------

@PROPERTY
@given(ANY_TEXT)
def test_any_threshold_text_parses_or_points_at_the_fault(text):
    try:
        threshold = parse_threshold(text)
    except ThresholdError as exc:
        assert str(exc).startswith("bad threshold") and exc.reason
        assert 0 <= exc.pos <= len(text)
    else:
        assert threshold.metric and threshold.conditions


METRICS = ["http_req_duration", "ws_delivery_latency", "http_req_failed"]


@PROPERTY
@given(st.sampled_from(METRICS[:2]), st.lists(st.tuples(st.sampled_from(["p(95)", "p(99)", "avg", "max", "med"]),
                                                          st.sampled_from(["<", "<=", ">", ">="]),
                                                          st.integers(0, 100_000)), min_size=1, max_size=3))
def test_a_written_threshold_comes_back_as_written(metric, conditions):
    text = f"{metric}: " + ", ".join(f"{agg}{op}{n}" for agg, op, n in conditions)
    threshold = parse_threshold(text)
    assert threshold.metric == metric
    assert [(c.op, c.target) for c in threshold.conditions] == [(op, float(n)) for _, op, n in conditions]


# -- timelines and project config ----------------------------------------------------------

FAULT_TABLE = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(["kill", "latency", "partition", "pause", "crash", "nope"]), JSONISH)},
    optional={"target": st.one_of(st.sampled_from(["r1", "r2", "redis", "postgres", "redis@r2", ""]), JSONISH),
              "at": st.one_of(st.sampled_from(["0s", "5s", "1m", "-1s", "soon"]), JSONISH),
              "for": st.one_of(st.sampled_from(["10s", "0s", "2m"]), JSONISH),
              "latency": st.one_of(st.sampled_from(["200ms", "1s", "x"]), JSONISH),
              "dependency": st.one_of(st.sampled_from(["redis", "postgres", "broker"]), JSONISH)})


@PROPERTY
@given(st.one_of(
    st.fixed_dictionaries({"fault": st.lists(FAULT_TABLE, max_size=4)},
                          optional={"name": JSONISH, "description": JSONISH}),
    st.dictionaries(st.text(max_size=8), JSONISH, max_size=4)))
def test_any_timeline_document_parses_or_names_the_fault(doc):
    try:
        timeline = parse_timeline(doc, "t.toml")
    except TimelineError as exc:
        assert str(exc).startswith("t.toml: "), exc
    else:
        assert timeline.faults and all(e.at >= 0 for e in timeline.faults)


TOML_TEXT = st.one_of(
    ANY_TEXT,
    st.builds(lambda section, key, value: f"[{section}]\n{key} = {value}\n",
              st.sampled_from(["app", "load", "slo", "load.jsonws", "other"]),
              st.sampled_from(["command", "env", "health_path", "adapter", "thresholds", "cwd", "x"]),
              st.sampled_from(['"python -m app --port {port}"', '"{nope}"', "1", "[1, 2]", '{ A = "{port}" }',
                               '"/h"', '"h"', '["p(95)<5"]', '"jsonws"', '"{port"', "true"])),
)


@PROPERTY
@given(TOML_TEXT)
def test_any_gauntlet_toml_loads_or_names_the_key(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "gauntlet.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_project_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc), exc
    else:
        assert config.app.command
    try:
        load = load_config(str(path))
    except LoadConfigError as exc:
        assert str(path) in str(exc) or "load." in str(exc), exc
    else:
        assert load.adapter
    try:
        load_timeline(path)
    except TimelineError as exc:
        assert str(path) in str(exc), exc


# -- the proxy's request bodies --------------------------------------------------------------

BODY_BYTES = st.one_of(st.binary(max_size=60), JSONISH.map(lambda v: json.dumps(v).encode()),
                       st.fixed_dictionaries({}, optional={
                           "name": JSONISH, "listen": st.one_of(st.sampled_from(["127.0.0.1:0", ":0", "x"]), JSONISH),
                           "upstream": st.one_of(st.sampled_from(["127.0.0.1:6379", "[::1]:1", "h:0", "a:b"]), JSONISH),
                           "enabled": JSONISH, "type": st.one_of(st.sampled_from(["latency", "timeout", "x"]), JSONISH),
                           "stream": st.one_of(st.sampled_from(["upstream", "downstream", "up"]), JSONISH),
                           "toxicity": JSONISH,
                           "attributes": st.one_of(st.dictionaries(
                               st.sampled_from(["latency", "jitter", "timeout", "latncy"]), JSONISH, max_size=3),
                               JSONISH)}).map(lambda v: json.dumps(v).encode()))


@PROPERTY
@given(BODY_BYTES)
def test_any_proxy_body_decodes_or_is_a_400(raw):
    for decode in (lambda v: bodies.proxy_input(v), bodies.proxy_list, _toxic):
        try:
            decode(bodies.decode_json(raw))
        except ApiError as exc:
            assert exc.status in (400, 404, 409) and exc.message, exc


def _toxic(value):
    head = bodies.toxic_head(value)
    return bodies.new_toxic_attributes(head, value)


# -- tokens and keys -------------------------------------------------------------------------

USERS = st.text(alphabet=string.ascii_letters + string.digits + "_:@-", min_size=1, max_size=64)


@PROPERTY
@given(st.text(max_size=80), st.text(max_size=16))
def test_any_token_is_a_user_or_none_never_an_error(token, secret):
    user = verify_user_token(secret or "s", token)
    assert user is None or token.startswith(user + ".")
    assert is_publisher(secret or "k", token) in (True, False)
    assert bearer(token) is None or isinstance(bearer(token), str)


@PROPERTY
@given(USERS, st.text(min_size=1, max_size=16))
def test_an_issued_token_verifies_and_a_changed_one_does_not(user, secret):
    token = user_token(secret, user)
    assert verify_user_token(secret, token) == user
    assert verify_user_token(secret + "x", token) is None
    assert verify_user_token(secret, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
