"""The Docker backend judges like the embedded one: the replica-kill run passes on a
redis stack (as tests/chaos/test_chaos_replicas.py does embedded), and the memory broker
fails cross-instance delivery (as the embedded negative control does), through the
one run path (`gauntlet run`) and through the pytest plugin."""

from __future__ import annotations

import json

import pytest

from tests.docker.docker_support import gauntlet, run_labels

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_gauntlet_run_replica_kill_passes_on_docker(docker_client, tmp_path):
    done = gauntlet("run", "ramp", "--backend", "docker", "--chaos", "replica-kill", "--replicas", "3",
                    "--broker", "redis", "--stages", "5s:30,40s:30", "--quiet", "--seed", "11",
                    cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("runs/*/summary.json")).read_text())
    verdicts = {c["name"]: c["verdict"] for c in summary["checks"]}
    assert verdicts["delivery"] == "pass" and verdicts["faults"] == "pass", verdicts
    # The container's exit under the kill is the fault's, read back from its exit code.
    assert verdicts["replicas"] == "pass", verdicts
    killed = [e for e in summary["replicas"]["exits"] if e["replica"] == "r2" and e["asked_by"] != "the harness (teardown)"]
    assert killed and killed[0]["asked_by"].endswith("(kill r2)") and killed[0]["code"] == 137, summary["replicas"]
    journal = [json.loads(line) for line in next(tmp_path.glob("runs/*/faults.jsonl")).read_text().splitlines()]
    assert {(f["kind"], f["target"], f["outcome"]) for f in journal} >= {("kill", "r2", "ok")}
    state = json.loads(next(tmp_path.glob("runs/*/state.json")).read_text())
    assert state["spec"]["backend"] == "docker"
    assert state["spec"]["docker_run"] not in run_labels(docker_client)


@pytest.mark.gauntlet(backend="docker", replicas=2, broker="memory")
def test_memory_broker_fails_cross_instance_delivery_on_docker(docker_client, gauntlet_stack, gauntlet_load,
                                                               gauntlet_verdict):
    assert gauntlet_stack.backend == "docker"
    gauntlet_load.start("ramp", stages="2s:20,12s:20")
    checked = gauntlet_verdict()
    checked.assert_failed("delivery")
    assert "lost" in checked.check("delivery").summary
