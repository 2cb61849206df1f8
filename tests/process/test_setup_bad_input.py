"""Bad input through the installed console script: exit 78 (config) or 64 (usage), and exactly one
`bootstrap: error:` line on stderr that names the setting or path."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.agent import run_bootstrap
from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP
from tests.support.prereq import require_root, require_tool

pytestmark = pytest.mark.process

MODES = {"plan": ["plan", "--json"], "run": ["run", "--", "/bin/true"]}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path, ("dev", "qa", "prod"), app_name="orders", pod_ip="10.0.0.9")


def one_error(proc: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("bootstrap: error: "), proc.stderr
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"
    return lines[0]


ENV_CASES = [
    ("BOOTSTRAP_STOP_SIGNAL", "NOPE"),
    ("BOOTSTRAP_STOP_SIGNAL", "KILL"),
    ("BOOTSTRAP_DRAIN_SECONDS", "five"),
    ("BOOTSTRAP_STOP_TIMEOUT", "-3"),
    ("BOOTSTRAP_CHECKER_TIMEOUT", "x"),
    ("BOOTSTRAP_EXIT_REMAP", "143:0"),
    ("BOOTSTRAP_EXIT_REMAP", "143=256"),
    ("BOOTSTRAP_READY_TCP", "localhost"),
    ("BOOTSTRAP_READY_TCP", "99999"),
    ("BOOTSTRAP_READY_HTTP", "localhost:8080"),
    ("BOOTSTRAP_READY_CMD", "'unterminated"),
    ("BOOTSTRAP_READY_TIMEOUT", "long"),
    ("BOOTSTRAP_READY_PERIOD", "-1"),
    ("BOOTSTRAP_USER", "Bad User"),
    ("BOOTSTRAP_HTTP_PORT", "0"),
    ("BOOTSTRAP_HTTP_PORT", "port"),
    ("BOOTSTRAP_THREAD_DUMP", "sometimes"),
    ("BOOTSTRAP_LOG_DIR", "{app}/{container}"),
    ("BOOTSTRAP_LOG_DIR", "/var/log/{app}"),
    ("BOOTSTRAP_LOG_DIR", "{app}/../../etc"),
    ("BOOTSTRAP_LOG_DIR", "."),
    ("POD_IP", "not-an-ip"),
    ("POD_IP", "../10.0.0.1"),
    ("BOOTSTRAP_LOG_ROOT", "logs"),
    ("BOOTSTRAP_RUN_DIR", "run"),
    ("APP_HOME", "app"),
    ("APP_NAME", "Orders_Service!"),
    ("APP_NAME", "-orders"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("var", "value"), ENV_CASES)
def test_malformed_variable(env: dict[str, str], mode: str, var: str, value: str) -> None:
    env[var] = value
    one_error(run_bootstrap(*MODES[mode], env=env), 78, var)


OTHER_CASES = {
    "bad regex": ({"BOOTSTRAP_READY_LOG": "app.log", "BOOTSTRAP_READY_PATTERN": "Started ("}, "",
                  ["BOOTSTRAP_READY_PATTERN"]),
    "log without pattern": ({"BOOTSTRAP_READY_LOG": "app.log"}, "", ["BOOTSTRAP_READY_PATTERN"]),
    "pattern without log": ({"BOOTSTRAP_READY_PATTERN": "Started"}, "", ["BOOTSTRAP_READY_LOG"]),
    "yaml not a mapping": ({}, "- app_name: orders\n", ["bootstrap.yaml", "mapping"]),
    "yaml scalar": ({}, "orders\n", ["bootstrap.yaml", "mapping"]),
    "invalid yaml": ({}, "ready: {tcp: 8080\n", ["bootstrap.yaml", "YAML"]),
    "unknown yaml key": ({}, "stop_timeout: 5\nlog_rot: /x\n", ["log_rot", "bootstrap.yaml"]),
    "unknown ready key": ({}, "ready: {tcp: 8080, htp: x}\n", ["ready.htp"]),
    "bad yaml value": ({}, "drain_seconds: soon\n", ["drain_seconds", "bootstrap.yaml"]),
    "links escape": ({}, "links: [{source: ../../etc/passwd, target: conf/passwd}]\n", ["links[0].source"]),
    "links absolute": ({}, "links: [{source: /etc/passwd, target: conf/passwd}]\n", ["links[0].source"]),
    "missing APP_NAME": ({"APP_NAME": ""}, "", ["APP_NAME"]),
    "missing APP_ENV": ({"APP_ENV": ""}, "", ["APP_ENV"]),
    "unknown user": ({"BOOTSTRAP_USER": "nosuchuser"}, "", ["BOOTSTRAP_USER", "nosuchuser"]),
    "placeholder without value": ({"BOOTSTRAP_LOG_DIR": "{app}/{node}"}, "", ["BOOTSTRAP_LOG_DIR", "NODE_NAME"]),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", OTHER_CASES)
def test_bad_input(env: dict[str, str], tmp_path: Path, mode: str, case: str) -> None:
    extra, yaml, names = OTHER_CASES[case]
    env.update(extra)
    for key in [k for k, v in env.items() if v == ""]:
        del env[key]
    (tmp_path / "bootstrap.yaml").write_text(yaml)
    one_error(run_bootstrap(*MODES[mode], env=env), 78, *names)


@pytest.mark.parametrize("mode", MODES)
def test_explicit_config_missing(env: dict[str, str], tmp_path: Path, mode: str) -> None:
    env["BOOTSTRAP_CONFIG"] = str(tmp_path / "missing.yaml")
    one_error(run_bootstrap(*MODES[mode], env=env), 78, "BOOTSTRAP_CONFIG", "missing.yaml")


@pytest.mark.parametrize("mode", MODES)
def test_unknown_app_env_lists_environments(env: dict[str, str], mode: str) -> None:
    env["APP_ENV"] = "staging"
    line = one_error(run_bootstrap(*MODES[mode], env=env), 78, "APP_ENV", "staging")
    assert "dev, prod, qa" in line


@pytest.mark.parametrize("mode", MODES)
def test_missing_conf_d(env: dict[str, str], tmp_path: Path, mode: str) -> None:
    env["APP_HOME"] = str(tmp_path / "empty-home")
    one_error(run_bootstrap(*MODES[mode], env=env), 78, f"{tmp_path}/empty-home/conf.d")


@pytest.mark.parametrize("mode", MODES)
def test_missing_log_root(env: dict[str, str], tmp_path: Path, mode: str) -> None:
    env["BOOTSTRAP_LOG_ROOT"] = str(tmp_path / "no-logs")
    one_error(run_bootstrap(*MODES[mode], env=env), 78, str(tmp_path / "no-logs"))
    assert not (tmp_path / "run").exists()  # nothing is applied when setup cannot be planned


@pytest.mark.parametrize("mode", MODES)
def test_unwritable_log_root(env: dict[str, str], tmp_path: Path, mode: str) -> None:
    """Root ignores chmod, so the log root is made read-only with a bind mount in a private
    mount namespace; the host's view of tmp_path stays writable."""
    require_root()
    unshare = require_tool("unshare")
    require_tool("mount")
    script = ('mount --bind "$BOOTSTRAP_LOG_ROOT" "$BOOTSTRAP_LOG_ROOT" && '
              'mount -o remount,bind,ro "$BOOTSTRAP_LOG_ROOT" && exec "$@"')
    proc = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           BOOTSTRAP, *MODES[mode]], env=env, capture_output=True, text=True, timeout=30)
    line = one_error(proc, 78, env["BOOTSTRAP_LOG_ROOT"])
    assert "not writable" in line
    assert os.listdir(tmp_path / "logs") == []


USAGE_CASES = {
    "unknown subcommand": ["start"],
    "run without command or start": ["run"],
    "run with only --": ["run", "--"],
    "probe bogus flag": ["probe", "--bogus"],
    "probe two flags": ["probe", "--live", "--startup"],
    "plan bogus flag": ["plan", "--bogus"],
    "status with argument": ["status", "now"],
}


@pytest.mark.parametrize("case", USAGE_CASES)
def test_usage_errors(env: dict[str, str], case: str) -> None:
    one_error(run_bootstrap(*USAGE_CASES[case], env=env), 64)


def test_run_uses_start_when_no_command(env: dict[str, str], tmp_path: Path) -> None:
    """The counterpart of the usage error above: with start: set, `run` needs no command."""
    (tmp_path / "bootstrap.yaml").write_text("start: [/bin/true]\n")
    proc = run_bootstrap("run", env=env)
    assert proc.returncode == 0, proc.stderr
