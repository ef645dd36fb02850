from pathlib import Path

import pytest

from harness.config import ConfigError, load_project_config
from harness.spec import SpecError, StackSpec
from common.units import format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [
    ("15s", 15), ("2m", 120), ("500ms", 0.5), ("1h30m", 5400), ("1.5s", 1.5), ("3", 3), (4, 4), ("1m30s", 90),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "10x", "s", "-5s", "5 s s", "1.2.3s", True, -1])
def test_parse_duration_rejects_with_the_bad_text(bad):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(0.25) == "250ms"
    assert format_duration(90) == "1m30s"
    assert format_duration(15) == "15s"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_reference_sut(tmp_path):
    config = load_project_config(cwd=tmp_path)
    assert config.app.is_reference and "-m sut" in config.app.command


def test_gauntlet_toml_app_is_rendered_with_placeholders(tmp_path):
    write(tmp_path, "gauntlet.toml", """
[app]
command = "myapp --port {port} --name {instance}"
env = { DB = "{database_url}" }
health_path = "/healthz"
[slo]
thresholds = ["http_req_duration: p(95)<500"]
""")
    config = load_project_config(cwd=tmp_path)
    argv, env = config.app.render({"port": "8001", "instance": "r2", "database_url": "postgresql://x",
                                   "host": "127.0.0.1", "broker": "redis", "redis_url": "", "secret": "",
                                   "publisher_key": "", "python": "py"})
    assert argv == ["myapp", "--port", "8001", "--name", "r2"]
    assert env == {"DB": "postgresql://x"}
    assert config.slo == ("http_req_duration: p(95)<500",)
    assert not config.app.is_reference


def test_pyproject_tool_table_is_read(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.gauntlet.app]\ncommand = "app {port}"\n')
    assert load_project_config(cwd=tmp_path).app.command == "app {port}"


@pytest.mark.parametrize("text,message", [
    ('[app]\ncommand = "app --port {prot}"', "unknown placeholder {prot}"),
    ('[app]\nenv = {}\n', "app.command is required"),
    ('[app]\ncommand = "app"', "must use {port}"),
    ('[app]\ncommand = "app {port}"\nhealth_path = "health"', "app.health_path must be a path"),
    ('[app]\ncommand = "app {port}"\ncomand = 1', "unknown key app.comand"),
    ('[ap]\n', "unknown section [ap]"),
    ('[app\n', "not valid TOML"),
    ('[slo]\nthresholds = "p(95)<500"', "slo.thresholds must be a list"),
])
def test_bad_config_names_the_problem(tmp_path, text, message):
    write(tmp_path, "gauntlet.toml", text)
    with pytest.raises(ConfigError) as err:
        load_project_config(cwd=tmp_path)
    assert message in str(err.value)
    assert "gauntlet.toml" in str(err.value)


@pytest.mark.parametrize("fields,message", [
    ({"replicas": 0}, "replicas must be between"),
    ({"broker": "kafka"}, "unknown broker 'kafka'"),
    ({"lb_strategy": "random"}, "unknown load-balancing strategy"),
])
def test_bad_spec(fields, message):
    with pytest.raises(SpecError, match=message):
        StackSpec(**fields).validate()
