"""The pytest plugin as a user meets it: a ten-line chaos test in a project of their own."""

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

USER_TEST = '''
import pytest

@pytest.mark.chaos
@pytest.mark.gauntlet(replicas=2, broker="redis")
def test_replica_kill_loses_nothing(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    gauntlet_load.start("ramp", stages="2s:20,12s:20")
    gauntlet_load.sleep_until(4)
    gauntlet_nemesis.fault("kill", "r2", hold=4)
    gauntlet_verdict().assert_passed("delivery", "faults")
'''

# The reference SUT, declared the way a user declares their own app.
APP_TOML = '''
[app]
command = "{python} -m sut --port {port} --instance {instance} --broker {broker} --database-url {database_url} --redis-url {redis_url}"
env = { SUT_SECRET = "{secret}", SUT_PUBLISHER_KEY = "{publisher_key}" }
health_path = "/api/health"
ready_path = "/api/ready"
'''


def test_a_ten_line_chaos_test_passes_and_keeps_its_report(pytester):
    pytester.makefile(".toml", gauntlet=APP_TOML)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-m", "chaos", "-q", timeout=240)
    result.assert_outcomes(passed=1)
    reports = list(pytester.path.glob("runs/*/report.html"))
    assert len(reports) == 1
    state = next(pytester.path.glob("runs/*/state.json")).read_text()
    assert '"reference_app": false' in state, "the app came from the project's gauntlet.toml"


def test_a_failing_chaos_test_shows_the_verdict_table_and_report_path(pytester):
    pytester.makefile(".toml", gauntlet=APP_TOML)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-m", "chaos", "-q", "--gauntlet-broker", "memory", timeout=240)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gauntlet verdict*", "FAIL  delivery*", "report: *report.html"])


TIMELINE_TEST = '''
import pytest
from chaos.journal import read_journal

TIMELINE = """
[[fault]]
kind = "latency"
target = "redis"
at = "1s"
for = "5m"
latency = "20ms"
"""

@pytest.mark.chaos
@pytest.mark.gauntlet(replicas=2, broker="redis")
def test_the_verdict_stops_a_playing_timeline(gauntlet_load, gauntlet_nemesis, gauntlet_verdict, tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(TIMELINE)
    gauntlet_load.start("ramp", stages="1s:4,4s:4")
    gauntlet_nemesis.play(str(path), at=gauntlet_load.started)
    gauntlet_load.sleep_until(2)
    checked = gauntlet_verdict()
    faults = read_journal(checked.run_dir / "faults.jsonl")
    assert faults and not [f for f in faults if f.active], "healed before the run was checked"
'''


def test_the_verdict_heals_a_timeline_before_checking(pytester):
    pytester.makepyfile(test_user=TIMELINE_TEST)
    result = pytester.runpytest_subprocess("-m", "chaos", "-q", timeout=240)
    result.assert_outcomes(passed=1)
