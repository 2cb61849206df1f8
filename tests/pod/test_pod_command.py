"""`dockerfile-gen pod`: the example app's pod from the generator's output, as a user runs it: ready
with --until-ready, a wrong readiness port with its reason, and Ctrl-C mid-start, each leaving no
pod, container or volume behind."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.pod.conftest import APP, IMAGE
from tests.podman_engine import REPO, Engine

pytestmark = pytest.mark.pod

NETWORK, SUBNET = "i20-pods", "10.200.20.0/24"  # a bridge of our own: no other test's addresses
POD = f"{APP}-qa-pod-0"  # release APP-ENV


@pytest.fixture(scope="module")
def network(engine: Engine) -> Iterator[str]:
    if engine.podman("network", "exists", NETWORK, check=False).returncode != 0:
        engine.podman("network", "create", "--subnet", SUBNET, NETWORK)
    yield NETWORK
    engine.podman("network", "rm", "--force", NETWORK, check=False)


def pod_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dockerfile_gen", "pod", *args]


def leftovers(engine: Engine) -> dict[str, list[str]]:
    """This app's pods and containers, and every volume, in the tier's engine."""
    def names(*args: str) -> list[str]:
        return [n for n in engine.podman(*args).stdout.split() if n]
    return {"pods": [p for p in names("pod", "ps", "--format", "{{.Name}}") if p.startswith(APP)],
            "containers": [c for c in names("ps", "--all", "--format", "{{.Names}}") if c.startswith(APP)],
            "volumes": names("volume", "ls", "--format", "{{.Name}}")}


@pytest.fixture
def before(engine: Engine) -> dict[str, list[str]]:
    """What the engine holds before the command: other fixtures' volumes (the node-logs DaemonSet's)
    stay; the command must leave exactly this behind."""
    state = leftovers(engine)
    assert state["pods"] == [] and state["containers"] == []
    return state


def test_until_ready_exits_0_once_ready_then_stops_and_removes_the_pod(before: dict[str, list[str]], app_image: Path,
                                                                        engine: Engine,
                                                                        network: str) -> None:
    result = engine.run(*pod_command(str(app_image), "--env", "qa", "--until-ready", "180", "--network", network),
                        check=False, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    order = [r"rendered the chart as release hello-jar-qa with " + re.escape(IMAGE),
             rf"played pod {POD}", r"started: the startup probe passed", r"ready: the readiness probe passed; "
             r"the app listens on 10\.200\.20\.\d+ \(ports 8080\)", r"stopping: preStop, SIGTERM, SIGKILL after \d+s",
             rf"removed pod {POD}"]
    at = [re.search(pattern, out) for pattern in order]
    assert all(at), (order, out)
    assert [m.start() for m in at if m] == sorted(m.start() for m in at if m), out
    assert leftovers(engine) == before


def wrong_port_app(app_image: Path, engine: Engine, tmp_path: Path) -> Path:
    """hello-jar with a readiness check on a port it lists but never opens, and a 5 s deadline."""
    context = tmp_path / APP
    shutil.copytree(app_image.parent / APP, context)
    spec = yaml.safe_load((context / "app.yaml").read_text())
    spec.update(ports=[8080, 9029], ready={"tcp": 9029, "timeout": 5})
    (context / "app.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "gen"
    engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", "wrong-port")
    engine.podman("build", "--format", "docker", "--network", "host", "-t", f"{IMAGE.rsplit(':', 1)[0]}:wrong-port",
                  "-f", str(out / "Dockerfile"), str(context))
    return out


def test_a_wrong_ready_port_exits_1_with_the_reason(before: dict[str, list[str]], app_image: Path, engine: Engine,
                                                     network: str,
                                                    tmp_path: Path) -> None:
    out = wrong_port_app(app_image, engine, tmp_path)
    result = engine.run(*pod_command(str(out), "--env", "qa", "--until-ready", "120", "--network", network),
                        check=False, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"agent: starting: waiting for tcp 127\.0\.0\.1:9029: connection refused", result.stdout), result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"dockerfile-gen: error: pod {POD} not ready: the agent says failed: "
                    "not ready within 5s: tcp 127.0.0.1:9029: connection refused"), result.stderr
    assert "  | bootstrap: info: readiness failed: not ready within 5s" in result.stderr  # the container's own lines
    assert f"removed pod {POD}" in result.stdout
    assert leftovers(engine) == before


def test_ctrl_c_mid_start_runs_the_stop_and_leaves_nothing(before: dict[str, list[str]], app_image: Path,
                                                          engine: Engine, network: str) -> None:
    """SIGINT as a terminal sends it (to the command; podman runs in sessions of its own) as soon as
    the pod is played, while the app starts."""
    proc = subprocess.Popen(pod_command(str(app_image), "--env", "qa", "--network", network), env=engine.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines: list[str] = []
    played = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "played pod" in line:
                played.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert played.wait(300), "".join(lines)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    out = "".join(lines)
    assert proc.stderr is not None and "SIGINT: stopping" in proc.stderr.read()
    assert "stopping: preStop, SIGTERM, SIGKILL after" in out and f"removed pod {POD}" in out, out
    assert leftovers(engine) == before
