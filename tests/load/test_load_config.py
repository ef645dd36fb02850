"""[load] in gauntlet.toml: every load setting, its precedence, its errors, and which
file the load generator reads (the explicit one, the stack's, the working directory's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ConfigError, load_project_config
from common.state import StackState, write_state
from scenarios.config import LoadConfigError, config_defaults, load_config
from scenarios.settings import CONFIG_KEYS, SettingsError, parse_args

ROOT = Path(__file__).resolve().parents[2]

EVERY_SETTING = """
[load]
stages = "5s:20,10s:20"
subscriber_weight = 5
publisher_weight = 2
reader_weight = 0
publishers = 3
user_pool = 40
publish_rate = 12
broadcast_ratio = 0.25
max_inflight = 7
publish_timeout = "3s"
read_rate = 0.5
item_count = 9
connect_timeout = 4
first_connect_spread = "250ms"
reconnect_cap = "2s"
reconnects_per_minute = 12
resume_margin = "250ms"
storm_at = ["8s", "4s"]
storm_jitter = "1s"
ws_stats = false
flush_every = 500
ship_timeout = "30s"
ship_records = "always"
payload_size = "40..12000"
hostile = 2
hostile_rate = 0.5
slow_readers = 1
slow_read_delay = "50ms"
stalled_readers = 2
stall_every = "6s"
stall_for = "2s"
vanishing = 3
vanish_every = "4s"
heal_burst = 20
slow_requests = 4
slow_request_time = "2s"
slow_request_path = "/slow"
"""


def _table(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)["load"]


def test_every_load_setting_can_be_set_in_the_load_table():
    table = _table(EVERY_SETTING)
    assert set(table) == set(CONFIG_KEYS), "the example covers every configurable setting"
    s = parse_args([], table)
    assert (s.stages, s.subscriber_weight, s.publisher_weight, s.reader_weight, s.publishers) == (
        "5s:20,10s:20", 5, 2, 0, 3)
    assert (s.user_pool, s.publish_rate, s.broadcast_ratio, s.max_inflight) == (40, 12.0, 0.25, 7)
    assert (s.publish_timeout, s.read_rate, s.item_count, s.connect_timeout) == (3.0, 0.5, 9, 4.0)
    assert (s.reconnect_cap, s.reconnects_per_minute, s.resume_margin, s.first_connect_spread) == (2.0, 12, 0.25, 0.25)
    assert (s.storm_at, s.storm_jitter, s.ws_stats, s.flush_every, s.ship_timeout, s.ship_records) == (
        (4.0, 8.0), 1.0, False, 500, 30.0, "always")
    assert str(s.payload_size) == "40..12000"
    assert (s.hostile, s.hostile_rate, s.slow_readers, s.slow_read_delay) == (2, 0.5, 1, 0.05)
    assert (s.stalled_readers, s.stall_every, s.stall_for, s.vanishing, s.vanish_every, s.heal_burst) == (
        2, 6.0, 2.0, 3, 4.0, 20)
    assert (s.slow_requests, s.slow_request_time, s.slow_request_path) == (4, 2.0, "/slow")


def test_the_command_line_overrides_the_load_table():
    table = _table(EVERY_SETTING)
    s = parse_args(["--broadcast-ratio", "0.05", "--stages", "1s:1"], table)
    assert (s.broadcast_ratio, s.stages, s.publish_rate) == (0.05, "1s:1", 12.0)
    # The scenario's default applies when neither says anything.
    assert parse_args([], {}).broadcast_ratio == 0.05


@pytest.mark.parametrize("text, message", [
    ("[load]\nbroadcast_ration = 0.2\n", "unknown key load.broadcast_ration; known: adapter, secret, publisher_key"),
    ("[load]\nbroadcast_ratio = 3\n", "--broadcast-ratio must be between 0 and 1, not 3.0"),
    ("[load]\npublish_rate = \"fast\"\n", "load.publish_rate must be a number, not 'fast'"),
    ("[load]\nuser_pool = 2.5\n", "load.user_pool must be an integer"),
    ("[load]\nws_stats = 1\n", "load.ws_stats must be true or false"),
    ("[load]\nstages = \"30s:100,,10s:0\"\n", "stage 2 '' is empty"),
    ("[load]\npublish_timeout = \"soon\"\n", "load.publish_timeout: invalid duration 'soon'"),
    ("[load]\nseed = 7\n", "load.seed cannot be set in the config; give --seed"),
    ("[load]\nallow_remote = true\n", "load.allow_remote cannot be set in the config; give --allow-remote"),
    ("[load]\nadapter = \"socketio\"\n[load.socketio]\nevnt = \"x\"\n", "unknown setting 'evnt'"),
])
def test_a_bad_load_table_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    (tmp_path / "gauntlet.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_project_config(cwd=tmp_path)
    assert message in str(err.value) and str(tmp_path / "gauntlet.toml") in str(err.value)
    assert "\n" not in str(err.value)


def test_gauntlet_run_refuses_a_bad_load_table_with_exit_2_before_anything_starts(tmp_path):
    (tmp_path / "gauntlet.toml").write_text("[load]\nbroadcast_ration = 0.2\n")
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "ramp"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "unknown key load.broadcast_ration" in done.stderr
    assert not (tmp_path / "runs").exists()


def _stack_state(tmp_path: Path, config: str | None) -> Path:
    spec = {} if config is None else {"config": config}
    state = StackState(run_dir=str(tmp_path), harness_pid=1, started=1.0, broker="redis", lb_strategy="round_robin",
                       lb_url="http://127.0.0.1:41001", ws_url="ws://127.0.0.1:41001/ws", secret="s",
                       publisher_key="pk", spec=spec)
    path = tmp_path / "stack.json"
    write_state(state, path)
    return path


def test_which_config_the_load_generator_reads(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "gauntlet.toml").write_text('[load]\nadapter = "socketio"\npublish_rate = 9\n')
    here = tmp_path / "here"
    here.mkdir()
    (here / "gauntlet.toml").write_text('[load]\nadapter = "jsonws"\npublish_rate = 2\n')
    monkeypatch.chdir(here)
    monkeypatch.delenv("GAUNTLET_STATE", raising=False)
    monkeypatch.delenv("GAUNTLET_CONFIG", raising=False)
    missing = str(tmp_path / "no-stack.json")
    assert load_config(state_path=missing).adapter == "jsonws", "no stack: the working directory's"
    assert load_config(str(project / "gauntlet.toml")).adapter == "socketio", "explicit wins"
    state = _stack_state(tmp_path, str(project / "gauntlet.toml"))
    assert load_config(state_path=str(state)).adapter == "socketio", "the stack's own config"
    state = _stack_state(tmp_path, "")
    assert load_config(state_path=str(state)).adapter == "reference", "a stack without a config: the defaults"
    state = _stack_state(tmp_path, None)
    assert load_config(state_path=str(state)).adapter == "jsonws", "an older state that does not say"
    # Defaults for Locust's parser come from the same file, found from the pending command line.
    assert config_defaults(["--gauntlet-config", str(project / "gauntlet.toml")])["publish_rate"] == 9.0
    assert config_defaults(["--state", missing])["publish_rate"] == 2.0
    monkeypatch.setenv("GAUNTLET_CONFIG", str(project / "gauntlet.toml"))
    assert config_defaults([])["publish_rate"] == 9.0


def test_the_load_tables_stages_are_gauntlet_runs_default_shape(tmp_path):
    from harness.cli import build_parser
    from harness.commands.run import build_plan

    (tmp_path / "gauntlet.toml").write_text('[load]\nstages = "3s:10,7s:10"\n')
    args = build_parser().parse_args(["run", "ramp", "--config", str(tmp_path / "gauntlet.toml")])
    plan = build_plan(args, [])
    assert (plan.stages, plan.duration) == ("3s:10,7s:10", 10.0)
    assert plan.spec.config_path == str((tmp_path / "gauntlet.toml").resolve())
    args = build_parser().parse_args(["run", "ramp", "--config", str(tmp_path / "gauntlet.toml"),
                                      "--stages", "2s:5"])
    assert build_plan(args, []).stages == "2s:5"


def test_the_load_generator_is_handed_the_config_file(tmp_path):
    from harness.loadgen import LoadPlan

    plan = LoadPlan(scenario=ROOT / "scenarios" / "ramp.py", host="http://127.0.0.1:1", run_dir=tmp_path,
                    state_file=tmp_path / "state.json", seed=1, processes=2, config="/elsewhere/gauntlet.toml")
    argv = plan.argv()
    assert argv[argv.index("--gauntlet-config") + 1] == "/elsewhere/gauntlet.toml"
    assert "--processes" in argv  # forked workers parse the same command line


def test_settings_error_names_the_argument_on_the_command_line():
    with pytest.raises(SettingsError, match="--broadcast-ratio must be between 0 and 1"):
        parse_args(["--broadcast-ratio", "2"])
    with pytest.raises(LoadConfigError, match="config file nope.toml does not exist"):
        load_config("nope.toml")
