"""Two example apps built from their generated Dockerfiles and run as containers:
PID 1 is bootstrap, APP_ENV=qa links the QA config, and logs land in the host's
bind-mounted /data/logs/<app>/<container IP>/."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.podman_engine import REPO, Engine, TreeBuild, compile_app, record

pytestmark = pytest.mark.container


@dataclass(frozen=True)
class Running:
    name: str
    ip: str
    logs: Path  # the host directory mounted at /data/logs


def _run_app(engine: Engine, tmp_path: Path, app: str, kind: str) -> Iterator[Running]:
    context = tmp_path / app
    compile_app(REPO / "examples" / "apps" / app, context, kind)
    out = tmp_path / "gen"
    engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", "test")
    image = f"localhost/apps/{app}:test"
    built = engine.podman("build", "--format", "docker", "-t", image, "-f", str(out / "Dockerfile"), str(context))
    assert "STEP" in built.stdout or built.returncode == 0
    logs = tmp_path / "logs"
    logs.mkdir()
    engine.podman("run", "-d", "--name", app, "-e", "APP_ENV=qa", "-v", f"{logs}:/data/logs", image)
    try:
        ip = engine.podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", app).stdout.strip()
        assert ip, "the container has an address on podman's bridge"
        yield Running(app, ip, logs)
    finally:
        engine.podman("logs", app, check=False)
        engine.podman("rm", "--force", "--time", "0", app, check=False)


def _ready(engine: Engine, name: str) -> bool:
    state = engine.podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
    if state != "true":
        logs = engine.podman("logs", name, check=False)
        raise AssertionError(f"{name} exited:\n{logs.stdout}\n{logs.stderr}")
    return engine.podman("exec", name, "cat", "/run/bootstrap/ready", check=False).returncode == 0


def _check_contract(engine: Engine, running: Running, url_path: str, conf_file: str) -> str:
    wait_until(lambda: _ready(engine, running.name), timeout=180, interval=0.5)
    for flag in ("--live", "--startup"):  # the chart's other two probes, run the way the kubelet runs them
        assert engine.podman("exec", running.name, "bootstrap", "probe", flag, check=False).returncode == 0, flag
    cmdline = engine.podman("exec", running.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert any(word.endswith("bootstrap") for word in cmdline[:2]) and "run" in cmdline, cmdline
    link = engine.podman("exec", running.name, "readlink", f"/app/conf/{conf_file}").stdout.strip()
    assert link == f"/app/conf.d/qa/{conf_file}"
    with urllib.request.urlopen(f"http://{running.ip}:8080{url_path}", timeout=10) as response:
        body = response.read().decode()
    assert "env=qa" in body and "greeting=hello from qa" in body
    log_dir = running.logs / running.name / running.ip
    assert log_dir.is_dir(), sorted(str(p) for p in running.logs.rglob("*"))
    start = json.loads((log_dir / ".bootstrap.jsonl").read_text().splitlines()[0])
    assert (start["event"], start["app"], start["env"], start["ip"]) == ("start", running.name, "qa", running.ip)
    return str(log_dir)


@pytest.fixture
def hello_jar(built_tree: TreeBuild, engine: Engine, tmp_path: Path) -> Iterator[Running]:
    yield from _run_app(engine, tmp_path, "hello-jar", "jar")


@pytest.fixture
def hello_war(built_tree: TreeBuild, engine: Engine, tmp_path: Path) -> Iterator[Running]:
    yield from _run_app(engine, tmp_path, "hello-war", "war")


def test_plain_jar_app(engine: Engine, hello_jar: Running) -> None:
    log_dir = Path(_check_contract(engine, hello_jar, "/", "application.properties"))
    assert "started on port 8080" in (log_dir / "hello.log").read_text()
    flags = engine.podman("exec", hello_jar.name, "readlink", "/app/conf/feature-flags.properties").stdout.strip()
    assert flags == "/app/conf.d/qa/feature-flags.properties", "files only QA has are linked too"
    engine.podman("stop", "--time", "30", hello_jar.name)
    records = [json.loads(line) for line in (log_dir / ".bootstrap.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "exit", records
    assert "stopping" in (log_dir / "hello.log").read_text(), "the JVM got the stop signal and ran its shutdown hook"
    size = json.loads(engine.podman("image", "inspect", "localhost/apps/hello-jar:test").stdout)[0]["Size"]
    record("app_image_sizes_mb", {"hello-jar (jre-17)": round(size / 1e6)})


def test_war_on_tomcat10(engine: Engine, hello_war: Running) -> None:
    log_dir = Path(_check_contract(engine, hello_war, "/hello-war/", "application.properties"))
    user = engine.podman("exec", hello_war.name, "ps", "-o", "user=", "-p", "2,3,4,5,6,7,8,9,10").stdout.split()
    assert "tomcat" in user, "Tomcat runs as the user bootstrap.yaml names"
    # Tomcat's own logs follow log_links into the per-container directory on the host.
    tomcat_logs = sorted(p.name for p in (log_dir / "tomcat").iterdir())
    assert any(name.startswith("catalina.") for name in tomcat_logs), tomcat_logs
    assert any(name.startswith("localhost_access_log") for name in tomcat_logs), tomcat_logs
