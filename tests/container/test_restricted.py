"""A generated image run the way the chart runs it under Pod Security "restricted": its own
non-root USER (no --user), a read-only root filesystem, no capability at all, no new privileges,
tmpfs only where the chart mounts an emptyDir (the run dir, /tmp, the config link directory and
the spec's `writable:`), and the host's log root set up as helm/node-logs sets up a node's
(root:10000, mode 3753). Two apps on one host log root: each is denied the other's logs and lock
(read, write, rename, unlink) and works with its own."""
from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.podman_engine import REPO, Engine, compile_app, record, start_to_ready, tree_build
from tests.support.waiting import wait_until

pytestmark = pytest.mark.container

READERS, ROOT_MODE = 10000, 0o3753
RESTRICTED = ("--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


@dataclass(frozen=True)
class App:
    name: str
    image: str
    uid: int
    writable: tuple[str, ...]


@dataclass(frozen=True)
class Running:
    app: App
    container: str
    ip: str


@pytest.fixture(scope="module")
def jre_tree(engine: Engine, debian_images: None) -> None:
    tree_build(engine, images=("root", "jre-17"))


def build(engine: Engine, work: Path, name: str) -> App:
    """hello-jar under another name (so another uid), with a writable data directory."""
    context = work / name
    compile_app(REPO / "examples" / "apps" / "hello-jar", context, "jar")
    spec = context / "app.yaml"
    doc = yaml.safe_load(spec.read_text())
    doc.update(name=name, artifact=f"build/{context.name}.jar", writable=["data", {"path": "/var/lib/h2", "sizeLimit": "64Mi"}])
    spec.write_text(yaml.safe_dump(doc))
    out = work / f"gen-{name}"
    engine.gen("app", str(spec), "-o", str(out), "--tag", "test")
    image = f"localhost/apps/{name}:test"
    engine.podman("build", "--format", "docker", "--network", "host", "-t", image, "-f", str(out / "Dockerfile"), str(context))
    values = yaml.safe_load((out / "values.yaml").read_text())
    return App(name, image, values["image"]["uid"], tuple(w["path"] for w in values["writable"]))


@pytest.fixture(scope="module")
def apps(engine: Engine, jre_tree: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[App, App]:
    work = tmp_path_factory.mktemp("restricted-apps")
    return build(engine, work, "hello-first"), build(engine, work, "hello-second")


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    root.mkdir()
    os.chown(root, 0, READERS)
    root.chmod(ROOT_MODE)
    tmp_path.chmod(0o755)
    return root


def run(engine: Engine, app: App, log_root: Path) -> Running:
    """As the chart runs it, with its emptyDirs as tmpfs at the same mount points, owned by the
    container's user (`U`) as podman kube play makes an emptyDir (the kubelet makes them 0777)."""
    tmpfs = [w for path in ("/run/bootstrap", "/tmp", "/app/conf", *app.writable) for w in ("--tmpfs", f"{path}:rw,U")]
    engine.podman("run", "-d", "--name", app.name, *RESTRICTED, *tmpfs, "-e", "APP_ENV=qa",
                  "-v", f"{log_root}:/data/logs", app.image)
    ip = engine.podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", app.name).stdout.strip()
    return Running(app, app.name, ip)


def ready(engine: Engine, name: str) -> bool:
    if engine.podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
        logs = engine.podman("logs", name, check=False)
        raise AssertionError(f"{name} exited:\n{logs.stdout}\n{logs.stderr}")
    return engine.podman("exec", name, "cat", "/run/bootstrap/ready", check=False).returncode == 0


def sh(engine: Engine, container: str, script: str) -> int:
    return engine.podman("exec", container, "sh", "-c", script, check=False).returncode


def running_container(engine: Engine, app: App, log_root: Path) -> Iterator[Running]:
    """`run`, for a fixture to yield: the container's log printed and the container removed after."""
    started = run(engine, app, log_root)
    try:
        yield started
    finally:
        engine.podman("logs", started.container, check=False)
        engine.podman("rm", "--force", "--time", "0", started.container, check=False)


@pytest.fixture
def first(engine: Engine, apps: tuple[App, App], log_root: Path) -> Iterator[Running]:
    yield from running_container(engine, apps[0], log_root)


@pytest.fixture
def second(engine: Engine, apps: tuple[App, App], log_root: Path, first: Running) -> Iterator[Running]:
    yield from running_container(engine, apps[1], log_root)


def test_generated_app_runs_restricted_with_a_read_only_root(engine: Engine, first: Running, log_root: Path) -> None:
    app, name = first.app, first.container
    wait_until(lambda: ready(engine, name), timeout=180, interval=0.5)
    record("start_to_ready_seconds_restricted", start_to_ready(engine, name))
    # Its own uid and group, and no capability at all, in the agent and in the app.
    status = json.loads(engine.podman("exec", name, "cat", "/run/bootstrap/status.json").stdout)
    for pid in (1, status["pid"]):
        fields = dict(line.split(":\t", 1) for line in engine.podman("exec", name, "cat", f"/proc/{pid}/status")
                      .stdout.splitlines() if ":\t" in line)
        assert fields["Uid"].split()[0] == fields["Gid"].split()[0] == str(app.uid), fields["Uid"]
        assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
    # Config links for the environment, on the config link directory's tmpfs.
    link = engine.podman("exec", name, "readlink", "/app/conf/application.properties").stdout.strip()
    assert link == "/app/conf.d/qa/application.properties"
    with urllib.request.urlopen(f"http://{first.ip}:8080/", timeout=10) as response:
        assert "env=qa" in response.read().decode()
    # The image's files are root's and read-only; the declared directories and /tmp are writable.
    assert sh(engine, name, "touch /app/x") != 0 and sh(engine, name, "touch /app/conf.d/qa/x") != 0
    for path in (*app.writable, "/tmp"):
        assert sh(engine, name, f"touch {path}/x && rm {path}/x") == 0, path
    # The log directory on the host: the app's uid, the readers' group, 0750.
    log_dir = log_root / app.name / first.ip
    wait_until(log_dir.is_dir, timeout=10)
    for directory in (log_dir.parent, log_dir):
        st = directory.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (app.uid, READERS, 0o750), directory
    assert engine.podman("exec", name, "readlink", "-f", "/app/logs").stdout.strip() == f"/data/logs/{app.name}/{first.ip}"
    # A graceful stop, and the right exit record.
    engine.podman("stop", "--time", "60", name)
    records = [json.loads(line) for line in (log_dir / ".bootstrap.jsonl").read_text().splitlines()]
    assert (records[-1]["event"], records[-1]["cause"], records[-1]["raw_exit_code"]) == ("exit", "stopped", 143)
    assert int(engine.podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout) == records[-1]["exit_code"] == 0


OPS = {
    "read": "cat {f} >/dev/null",
    "write": "echo x >> {f}",
    "rename": "mv {f} {f}.moved",
    "unlink lock": "rm -f {d}/.bootstrap.lock && test ! -e {d}/.bootstrap.lock",
    "read lock": "cat {d}/.bootstrap.lock",
    "list": "ls {d}",
    "rename dir": "mv {d} {d}.moved",
}


def test_two_apps_on_one_log_root_are_apart(engine: Engine, first: Running, second: Running, log_root: Path) -> None:
    for running in (first, second):
        wait_until(lambda running=running: ready(engine, running.container), timeout=180, interval=0.5)
    dirs = {r.container: f"/data/logs/{r.app.name}/{r.ip}" for r in (first, second)}
    for running in (first, second):
        engine.podman("exec", running.container, "sh", "-c", "echo mine >> /app/logs/app.log")
    for me, other in ((first, second), (second, first)):
        d = dirs[other.container]
        for op, script in OPS.items():
            code = sh(engine, me.container, script.format(f=f"{d}/app.log", d=d))
            assert code != 0, f"{me.app.name} could {op} {d}"
        own = dirs[me.container]
        for op in ("read", "write", "rename"):
            assert sh(engine, me.container, OPS[op].format(f=f"{own}/app.log", d=own)) == 0, (me.app.name, op)
        assert sh(engine, me.container, f"mv {own}/app.log.moved {own}/app.log") == 0
        assert sh(engine, me.container, "ls /data/logs") != 0, "the log root cannot be listed by an app"
    for running in (first, second):
        assert ready(engine, running.container)
        log = log_root / running.app.name / running.ip / "app.log"
        assert log.read_text().startswith("mine\n")
    # No app wrote into the other's directory: everything there is its own app's.
    for running in (first, second):
        owners = {p.stat().st_uid for p in (log_root / running.app.name / running.ip).rglob("*")}
        assert owners == {running.app.uid}, (running.app.name, owners)


def test_an_image_shipped_config_file_in_the_way_still_works(engine: Engine, apps: tuple[App, App], log_root: Path,
                                                             tmp_path: Path) -> None:
    """An image that ships conf/application.properties where the agent links: with the chart's
    read-only root the emptyDir hides it (the image keeps it, nothing is destroyed) and the app
    sees the environment's file; with a writable root the agent, as the app's user, moves it aside
    to .orig."""
    app = apps[0]
    context = tmp_path / "shipped"
    context.mkdir()
    (context / "application.properties").write_text("greeting=from the image\n")
    (context / "Dockerfile").write_text(f"FROM {app.image}\nCOPY application.properties /app/conf/application.properties\n")
    image = f"{app.image}-shipped"
    engine.podman("build", "--format", "docker", "--network", "host", "-t", image, str(context))
    shipped = App(app.name, image, app.uid, app.writable)
    for read_only in (True, False):
        if read_only:
            running = run(engine, shipped, log_root)
        else:
            engine.podman("run", "-d", "--name", app.name, "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                          "-e", "APP_ENV=qa", "-v", f"{log_root}:/data/logs", image)
            running = Running(shipped, app.name, "")
        try:
            wait_until(lambda: ready(engine, running.container), timeout=180, interval=0.5)
            link = engine.podman("exec", running.container, "readlink", "/app/conf/application.properties").stdout
            assert link.strip() == "/app/conf.d/qa/application.properties"
            if not read_only:
                kept = engine.podman("exec", running.container, "cat", "/app/conf/application.properties.orig").stdout
                assert kept == "greeting=from the image\n"
        finally:
            engine.podman("rm", "--force", "--time", "0", running.container, check=False)
