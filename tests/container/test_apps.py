"""The example jar and WAR built from their generated Dockerfiles and run as containers, on every
Java major of the tree: PID 1 is bootstrap, APP_ENV=qa links the QA config, logs land in the host's
bind-mounted /data/logs/<app>/<container IP>/, and a stop ends in a clean exit record. Each run
records its start-to-ready time (docs/dockerfile-gen.md quotes them)."""
from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.podman_engine import REPO, REPORT, Engine, TreeBuild, compile_app, record, start_to_ready
from tests.support.waiting import wait_until

pytestmark = pytest.mark.container


@dataclass(frozen=True)
class Running:
    name: str  # the container's; the app's name is `app`
    app: str
    ip: str
    logs: Path  # the host directory mounted at /data/logs
    image: str


@contextmanager
def _run_app(engine: Engine, tmp_path: Path, app: str, kind: str, java: int | None = None) -> Iterator[Running]:
    """Builds and starts one example. `java` rewrites the spec's major, to place the same artifact
    on another base (its class files target 17)."""
    context = tmp_path / app
    compile_app(REPO / "examples" / "apps" / app, context, kind)
    if java is not None:
        spec = context / "app.yaml"
        spec.write_text(re.sub(r"(?m)^java: \d+$", f"java: {java}", spec.read_text()))
    out = tmp_path / "gen"
    engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", "test")
    name = f"{app}-java{java}" if java is not None else app
    image = f"localhost/apps/{name}:test"
    built = engine.podman("build", "--format", "docker", "-t", image, "-f", str(out / "Dockerfile"), str(context))
    assert "STEP" in built.stdout or built.returncode == 0
    logs = tmp_path / "logs"
    logs.mkdir()
    # As helm/node-logs sets up a node's log root: the app runs as its image's own non-root user.
    os.chown(logs, 0, 10000)
    logs.chmod(0o3753)
    engine.podman("run", "-d", "--name", name, "-e", "APP_ENV=qa", "-v", f"{logs}:/data/logs", image)
    try:
        ip = engine.podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
        assert ip, "the container has an address on podman's bridge"
        yield Running(name, app, ip, logs, image)
    finally:
        engine.podman("logs", name, check=False)
        engine.podman("rm", "--force", "--time", "0", name, check=False)


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
    log_dir = running.logs / running.app / running.ip
    assert log_dir.is_dir(), sorted(str(p) for p in running.logs.rglob("*"))
    start = json.loads((log_dir / ".bootstrap.jsonl").read_text().splitlines()[0])
    assert (start["event"], start["app"], start["env"], start["ip"]) == ("start", running.app, "qa", running.ip)
    return str(log_dir)


def _base_of(engine: Engine, running: Running) -> str:
    labels = json.loads(engine.podman("image", "inspect", running.image).stdout)[0]["Labels"]
    return str(labels["io.k8s-java-bootstrap.base"])


def _stop_cleanly(engine: Engine, running: Running, log_dir: Path) -> dict[str, object]:
    """`podman stop` sends SIGTERM to PID 1, as the kubelet does; the agent stops the JVM and exits
    with its code (after the remap bootstrap.yaml sets, if any)."""
    engine.podman("stop", "--time", "60", running.name)
    records = [json.loads(line) for line in (log_dir / ".bootstrap.jsonl").read_text().splitlines()]
    last = records[-1]
    assert (last["event"], last["cause"]) == ("exit", "stopped"), records
    assert last["raw_exit_code"] == 143, "the JVM ran its shutdown hooks and exited on SIGTERM, no SIGKILL"
    exit_code = int(engine.podman("inspect", "--format", "{{.State.ExitCode}}", running.name).stdout)
    assert exit_code == last["exit_code"], "PID 1 exits with the code it recorded"
    return last


def _record_start(base: str, app: str, seconds: float) -> None:
    data = json.loads(REPORT.read_text()).get("start_to_ready_seconds", {}) if REPORT.exists() else {}
    data[f"{app} on {base}"] = seconds
    record("start_to_ready_seconds", data)


@pytest.fixture
def hello_jar(built_tree: TreeBuild, engine: Engine, tmp_path: Path) -> Iterator[Running]:
    with _run_app(engine, tmp_path, "hello-jar", "jar") as running:
        yield running


@pytest.fixture
def hello_war(built_tree: TreeBuild, engine: Engine, tmp_path: Path) -> Iterator[Running]:
    with _run_app(engine, tmp_path, "hello-war", "war") as running:
        yield running


def test_plain_jar_app(engine: Engine, hello_jar: Running) -> None:
    log_dir = Path(_check_contract(engine, hello_jar, "/", "application.properties"))
    _record_start(_base_of(engine, hello_jar), "hello-jar", start_to_ready(engine, hello_jar.name))
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
    _record_start(_base_of(engine, hello_war), "hello-war", start_to_ready(engine, hello_war.name))
    user = engine.podman("exec", hello_war.name, "ps", "-o", "user=", "-p", "1,2,3,4,5,6,7,8,9,10").stdout.split()
    assert set(user) == {"app"}, "the agent and Tomcat run as the image's own user (its USER), none as root"
    # Tomcat's own logs follow log_links into the per-container directory on the host.
    tomcat_logs = sorted(p.name for p in (log_dir / "tomcat").iterdir())
    assert any(name.startswith("catalina.") for name in tomcat_logs), tomcat_logs
    assert any(name.startswith("localhost_access_log") for name in tomcat_logs), tomcat_logs


@pytest.mark.parametrize(
    ("app", "kind", "java", "base", "url_path"),
    [
        ("hello-jar", "jar", 21, "jre-21", "/"),
        ("hello-jar", "jar", 25, "jre-25", "/"),
        ("hello-war", "war", 21, "tomcat10-jre21", "/hello-war/"),
    ],
    ids=["jar-on-jre-21", "jar-on-jre-25", "war-on-tomcat10-jre21"],
)
def test_app_on_each_trixie_base(
    built_tree: TreeBuild, engine: Engine, tmp_path: Path, app: str, kind: str, java: int, base: str, url_path: str
) -> None:
    """The generator places a Java 21 or 25 spec on the base of exactly that major, and the app runs
    there under the agent (on trixie's python3.13) from start to a clean stop."""
    with _run_app(engine, tmp_path, app, kind, java) as running:
        assert _base_of(engine, running) == base
        log_dir = Path(_check_contract(engine, running, url_path, "application.properties"))
        _record_start(base, app, start_to_ready(engine, running.name))
        # The JVM the app runs in, seen from /proc: the base's only JVM, of the spec's major. As the
        # app's user (the image's own, for a WAR too): a container's root has no CAP_SYS_PTRACE to
        # read another user's /proc/PID/exe.
        jvm = engine.podman("exec", "--user", "app", running.name, "sh", "-c",
                            "for p in /proc/[0-9]*; do case $(readlink $p/exe) in */java) readlink $p/exe;; esac; done").stdout.split()
        assert jvm and all(f"/java-{java}-openjdk-amd64/" in path for path in jvm), jvm
        python = engine.podman("exec", running.name, "sh", "-c", "readlink -f /proc/1/exe").stdout.strip()
        assert python.endswith("python3.13"), f"PID 1 is the agent on trixie's python3: {python}"
        _stop_cleanly(engine, running, log_dir)
