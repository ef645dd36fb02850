"""Hostile attempts: each kind breaks the credential the adapter really presents, and
the outcome follows the answer (2xx accepted, 4xx refused, no answer an error)."""

from __future__ import annotations

import random

from scenarios.adapters.base import Endpoint
from scenarios.adapters.jsonws import JsonWsAdapter
from scenarios.adapters.reference import ReferenceAdapter, user_token
from scenarios.hostile import MUTATIONS, catalogue, with_credential

ENDPOINT = Endpoint("http://127.0.0.1:1", "ws://127.0.0.1:1/ws", secret="s3cret", publisher_key="k" * 32)


def test_every_mutation_changes_the_credential_and_stays_a_string():
    rng = random.Random(5)
    token = user_token("s3cret", "u7")
    for name, mutate in MUTATIONS.items():
        for _ in range(20):
            bad = mutate(token, rng)
            assert bad != token and isinstance(bad, str), name
    assert MUTATIONS["forged"](token, rng).startswith("u7.") and len(MUTATIONS["forged"](token, rng)) == len(token)
    assert any(ord(c) > 127 for c in MUTATIONS["non-ascii"](token, rng))


def test_catalogue_covers_both_transports_and_every_target():
    kinds = catalogue()
    assert {k.transport for k in kinds} == {"http", "ws"}
    assert {k.target for k in kinds} == {"ws", "read", "publish"}
    assert "read-other-user" in {k.name for k in kinds}


def test_the_reference_reads_credential_is_swapped_in_its_header():
    adapter = ReferenceAdapter(ENDPOINT)
    valid = adapter.user_token("u1")
    history = adapter.read_requests("u1", 1, 0)[1]
    path, headers = with_credential(history, valid, "u1.forged")
    assert headers["Authorization"] == "Bearer u1.forged" and path == history.path
    assert with_credential(adapter.read_requests("u1", 1, 0)[0], valid, "x") is None, "item reads carry no token"
    _, headers = with_credential(history, valid, "")
    assert "Authorization" not in headers, "a missing credential leaves the header out"


def test_the_publisher_key_is_found_in_a_declarative_adapters_headers_and_a_token_in_its_url():
    adapter = JsonWsAdapter(ENDPOINT, {"read_paths": ["/api/notifications?user={user}&token={token}"]})
    req = adapter.publish_request("u1", {"key": "k"})
    _, headers = with_credential(req, ENDPOINT.publisher_key, "forged")
    assert headers["Authorization"] == "Bearer forged"
    read = adapter.read_requests("u1", 1, 0)[0]
    path, _ = with_credential(read, adapter.user_token("u1"), "u1.é")
    assert path.endswith("token=u1.é")  # percent-encoded when sent (hostile._ascii_target)
    assert "token=u1.%C3%A9" in adapter.ws_url("u1", "u1.é")


def test_an_adapter_presenting_no_credential_leaves_nothing_to_break():
    from scenarios.hostile import HostileClient

    bare = JsonWsAdapter(Endpoint("http://127.0.0.1:1", "ws://127.0.0.1:1/ws", publisher_key="k" * 32),
                         {"headers": {}, "ws_url": "{ws_url}"})
    assert HostileClient(bare, "http://127.0.0.1:1", "k" * 32, lambda row: None, random.Random(1),
                         lambda: 1).kinds == ()
    full = HostileClient(ReferenceAdapter(ENDPOINT), "http://127.0.0.1:1", ENDPOINT.publisher_key,
                         lambda row: None, random.Random(1), lambda: 1)
    assert {k.target for k in full.kinds} == {"ws", "read", "publish"}
