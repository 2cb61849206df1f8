"""The installed `bootstrap` console script as a subprocess: --version, plan, status, probe."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bootstrap import __version__, rundir
from tests.support.agent import run_bootstrap
from tests.support.apptree import app_tree, write_file


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return app_tree(tmp_path, ("dev", "prod"), app_name="orders", app_env="Prod", pod_ip="10.3.4.5",
                    settings_text="start: [java, -jar, app.jar]\n")


def tree(root: Path) -> dict[str, object]:
    result: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        result[str(path)] = (st.st_mode, st.st_mtime_ns, os.readlink(path) if path.is_symlink() else None)
    return result


def test_version() -> None:
    proc = run_bootstrap("--version", env={"PATH": os.environ.get("PATH", "")})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"bootstrap {__version__}\n", "")


def test_help_and_no_arguments() -> None:
    assert run_bootstrap("--help", env={}).returncode == 0
    proc = run_bootstrap(env={})
    assert proc.returncode == 64 and "usage:" in proc.stdout


def test_plan_json(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_bootstrap("plan", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"app", "env", "app_env", "ip", "log_dir", "user", "command", "config_file", "actions"}
    assert (doc["app"], doc["env"], doc["app_env"], doc["ip"]) == ("orders", "prod", "Prod", "10.3.4.5")
    assert doc["log_dir"] == f"{tmp_path}/logs/orders/10.3.4.5"
    assert (doc["user"], doc["command"]) == (None, ["java", "-jar", "app.jar"])
    assert doc["config_file"] == env["BOOTSTRAP_CONFIG"]
    home = env["APP_HOME"]
    links = {a["path"]: a["target"] for a in doc["actions"] if a["kind"] == "link"}
    assert links == {f"{home}/conf/logback.xml": f"{home}/conf.d/common/logback.xml",
                     f"{home}/conf/app.properties": f"{home}/conf.d/prod/app.properties",
                     f"{home}/logs": doc["log_dir"]}
    assert {"kind": "mkdir", "path": f"{tmp_path}/run"} in doc["actions"]
    for action in doc["actions"]:
        assert set(action) <= {"kind", "path", "target", "uid", "gid", "reason", "mode"}


def test_plan_json_with_command_and_user(env: dict[str, str]) -> None:
    env["BOOTSTRAP_USER"] = "4242:4343"
    doc = json.loads(run_bootstrap("plan", "--json", "--", "sleep", "1", env=env).stdout)
    assert doc["command"] == ["sleep", "1"]
    assert doc["user"] == {"name": "4242", "uid": 4242, "gid": 4343}
    chowns = [a for a in doc["actions"] if a["kind"] == "chown"]
    assert chowns and all((a["uid"], a["gid"]) == (4242, 4343) for a in chowns)


def test_plan_text(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_bootstrap("plan", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "app orders, env prod (APP_ENV=Prod), ip 10.3.4.5"
    assert lines[1] == f"log dir {tmp_path}/logs/orders/10.3.4.5"
    assert lines[2] == "command java -jar app.jar"
    assert f"link {env['APP_HOME']}/conf/app.properties -> {env['APP_HOME']}/conf.d/prod/app.properties" in lines


def test_plan_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    write_file(Path(env["APP_HOME"]) / "conf" / "app.properties", "in the way")
    write_file(Path(env["APP_HOME"]) / "logs" / "shipped.log", "shipped")
    before = tree(tmp_path)
    for args in (("plan",), ("plan", "--json")):
        assert run_bootstrap(*args, env=env).returncode == 0
    assert tree(tmp_path) == before


def test_plan_after_setup_is_empty(env: dict[str, str]) -> None:
    from bootstrap.pid1.actions import apply
    from bootstrap.pid1.plan import make_plan
    from bootstrap.settings import resolve

    apply(make_plan(resolve.load(env)).actions)
    proc = run_bootstrap("plan", env=env)
    lines = proc.stdout.splitlines()
    jvm_at = next(n for n, line in enumerate(lines) if line.startswith("jvm auto:"))
    assert lines[3:jvm_at] == ["nothing to change"]  # the JVM flags follow the setup actions
    assert json.loads(run_bootstrap("plan", "--json", env=env).stdout)["actions"] == []


def test_plan_dash_dash_command_starting_with_dash(env: dict[str, str]) -> None:
    doc = json.loads(run_bootstrap("plan", "--json", "--", "-weird", env=env).stdout)
    assert doc["command"] == ["-weird"]


def test_status_without_run_dir(tmp_path: Path) -> None:
    proc = run_bootstrap("status", env={"BOOTSTRAP_RUN_DIR": str(tmp_path / "none")})
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("bootstrap: error: ") and str(tmp_path / "none") in proc.stderr


def test_status_prints_status_json(tmp_path: Path) -> None:
    written = rundir.write(str(tmp_path), "starting", fresh=True, pid=123, supervisor_pid=45)
    proc = run_bootstrap("status", env={"BOOTSTRAP_RUN_DIR": str(tmp_path)})
    assert proc.returncode == 0 and json.loads(proc.stdout) == written


def test_probe_ready_file(tmp_path: Path) -> None:
    probe_env = {"BOOTSTRAP_RUN_DIR": str(tmp_path), "BOOTSTRAP_CONFIG": str(tmp_path / "not-read.yaml")}
    assert run_bootstrap("probe", env=probe_env).returncode == 1
    rundir.write(str(tmp_path), "ready", fresh=True, pid=1, supervisor_pid=1)
    assert (tmp_path / "ready").exists()
    assert run_bootstrap("probe", env=probe_env).returncode == 0
    assert run_bootstrap("probe", "--ready", env=probe_env).returncode == 0
    rundir.write(str(tmp_path), "stopping")
    assert run_bootstrap("probe", env=probe_env).returncode == 1


def test_probe_startup_reads_ready_at(tmp_path: Path) -> None:
    probe_env = {"BOOTSTRAP_RUN_DIR": str(tmp_path)}
    assert run_bootstrap("probe", "--startup", env=probe_env).returncode == 1  # no status.json
    rundir.write(str(tmp_path), "starting", fresh=True, pid=1)
    assert run_bootstrap("probe", "--startup", env=probe_env).returncode == 1
    rundir.write(str(tmp_path), "ready")
    rundir.write(str(tmp_path), "not_ready")  # ready once is enough
    assert json.loads((tmp_path / "status.json").read_text())["ready_at"]
    assert run_bootstrap("probe", "--startup", env=probe_env).returncode == 0


def test_probe_live_checks_both_pids(tmp_path: Path) -> None:
    probe_env = {"BOOTSTRAP_RUN_DIR": str(tmp_path)}
    alive = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 1  # no status.json
        rundir.write(str(tmp_path), "starting", fresh=True, pid=alive.pid, supervisor_pid=os.getpid())
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 0
        rundir.write(str(tmp_path), "starting", fresh=True, pid=dead.pid, supervisor_pid=os.getpid())
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 1
        rundir.write(str(tmp_path), "starting", fresh=True, pid=alive.pid, supervisor_pid=dead.pid)
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 1
        rundir.write(str(tmp_path), "starting", fresh=True, pid=alive.pid)  # no supervisor_pid
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 1
        rundir.write(str(tmp_path), "exited", fresh=True, pid=alive.pid, supervisor_pid=os.getpid(), exit_code=0)
        assert run_bootstrap("probe", "--live", env=probe_env).returncode == 1
    finally:
        alive.kill()
        alive.wait()


def test_probe_ignores_garbage_status(tmp_path: Path) -> None:
    write_file(tmp_path / "status.json", "{not json")
    probe_env = {"BOOTSTRAP_RUN_DIR": str(tmp_path)}
    for flag in ("--live", "--startup"):
        proc = run_bootstrap("probe", flag, env=probe_env)
        assert (proc.returncode, proc.stderr) == (1, "")
