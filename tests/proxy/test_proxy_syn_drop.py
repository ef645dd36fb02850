"""syn_drop, the proxy's own toxic: new connects hang (the SYN is dropped), open
connections keep flowing, and removing it lets waiting clients in, on the same port."""

from __future__ import annotations

import socket
import threading
import time

from proxy_support import LOOPBACK, round_trip


def connect_outcome(port: int, timeout: float) -> str:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "hang"


def test_syn_drop_hangs_new_connects_and_leaves_open_ones_alone(api, echo_proxy, dial):
    open_conn = dial(echo_proxy)
    round_trip(open_conn)
    toxic = api.add_toxic(echo_proxy.name, "syn_drop", {}, name="connects")
    assert (toxic.type, toxic.attributes) == ("syn_drop", {})
    assert api.get_proxy(echo_proxy.name).enabled, "still enabled: it listens, it just never answers"
    assert connect_outcome(echo_proxy.listen_port, 1.0) == "hang"
    round_trip(open_conn)  # data on the open connection still flows

    # A client that starts connecting during the fault gets in once it is removed
    # (its SYN is retransmitted), as when a partition heals.
    late: dict[str, object] = {}

    def connect_late() -> None:
        started = time.monotonic()
        late["outcome"] = connect_outcome(echo_proxy.listen_port, 10.0)
        late["took"] = time.monotonic() - started

    thread = threading.Thread(target=connect_late)
    thread.start()
    time.sleep(0.3)
    api.remove_toxic(echo_proxy.name, "connects")
    thread.join(15)
    assert late["outcome"] == "connected" and 0.3 < late["took"] < 8, late
    assert api.get_proxy(echo_proxy.name).listen_port == echo_proxy.listen_port
    round_trip(dial(echo_proxy))


def test_syn_drop_with_disable_enable_and_reset(api, echo_proxy, dial):
    api.add_toxic(echo_proxy.name, "syn_drop", {}, name="connects")
    api.disable(echo_proxy.name)
    assert connect_outcome(echo_proxy.listen_port, 1.0) == "refused", "disabled: nothing listens"
    api.enable(echo_proxy.name)
    assert connect_outcome(echo_proxy.listen_port, 1.0) == "hang", "enabled with the toxic: held again"
    api.reset()
    assert not api.get_proxy(echo_proxy.name).toxics
    round_trip(dial(echo_proxy))


def test_negative_control_without_syn_drop_a_timeout_toxic_accepts(api, echo_proxy):
    # What Toxiproxy alone offers: the connect succeeds, only the data hangs.
    api.add_toxic(echo_proxy.name, "timeout", {"timeout": 0}, name="hole")
    assert connect_outcome(echo_proxy.listen_port, 1.0) == "connected"


def test_deleting_a_held_proxy_frees_its_port(api, echo_proxy):
    api.add_toxic(echo_proxy.name, "syn_drop", {}, name="connects")
    api.delete_proxy(echo_proxy.name)
    assert connect_outcome(echo_proxy.listen_port, 1.0) == "refused"
    again = api.create_proxy(echo_proxy.name + "-again", upstream=echo_proxy.upstream,
                             listen=f"{LOOPBACK}:{echo_proxy.listen_port}")
    assert again.listen_port == echo_proxy.listen_port
