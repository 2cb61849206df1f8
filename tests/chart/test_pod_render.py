"""What `dockerfile-gen pod` gives `podman kube play`, without podman: the chart rendered by Helm's
engine with the generated values of a spec (values.yaml, then the environment's file, then the local
values), made playable by the adaptations docs/chart.md lists, and the per-environment container env
in the rendered Deployment. The pod tier plays it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.errors import GenError
from dockerfile_gen.pod import chart_render, play
from tests.support import chart as chartlib

pytestmark = pytest.mark.chart

SPEC = """\
name: h2
type: jar
java: 17
artifact: h2.jar
start: [java, -cp, /app/h2.jar, org.h2.tools.Server, -web, -tcp]
ports: [8082, 9092]
ready: {tcp: 9092, timeout: 60}
env: {H2_DIR: /data/h2}
jvm_options: [-Xss512k]
autoscaling: {min: 2, max: 4, cpu: 80}
resources: {requests: {cpu: 100m, memory: 256Mi}}
env_overrides:
  production: {env: {H2_DIR: /srv/h2, REGION: eu}, jvm_options: [-Xss1m, -Dh2.trace=1]}
"""


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    app = tmp_path / "h2"
    for env in ("common", "dev", "prod"):
        (app / "conf.d" / env).mkdir(parents=True)
        (app / "conf.d" / env / "h2.properties").write_text(f"env={env}\n")
    (app / "h2.jar").write_bytes(b"")
    (app / "app.yaml").write_text(SPEC)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "dockerfile_gen", "-q", "--tree", str(chartlib.REPO / "image-tree"), "app",
                    str(app / "app.yaml"), "-o", str(out), "--tag", "1.0.0"], check=True)
    return out


def rendered(out: Path, env: str, image: str | None = None) -> dict[str, dict[str, Any]]:
    values = chart_render.local_values(out, env, image, Path("/var/tmp/logs"))
    return {o["kind"]: o for o in chart_render.render(values, chart_render.release_name(values))}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_one_local_replica_of_the_environments_pod(generated: Path) -> None:
    objects = rendered(generated, "PRODUCTION")  # named as APP_ENV names it: any case, aliases
    deployment = objects["Deployment"]
    assert deployment["metadata"]["name"] == "h2-prod" and deployment["spec"]["replicas"] == 1
    assert "HorizontalPodAutoscaler" not in objects  # the environment autoscales; one pod here
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("localhost/apps/h2:1.0.0", "Never")
    env = env_of(container)
    assert env["APP_ENV"] == "prod" and env["H2_DIR"] == "/srv/h2" and env["REGION"] == "eu"
    assert env["JAVA_TOOL_OPTIONS"] == "-Xss1m -Dh2.trace=1"  # the base's -Xss512k left out
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert any(v.get("hostPath", {}).get("path") == "/var/tmp/logs" for v in volumes.values())


def test_dev_has_only_the_images_env(generated: Path) -> None:
    env = env_of(rendered(generated, "dev", image="localhost/apps/h2:mine")["Deployment"]["spec"]["template"]["spec"]["containers"][0])
    assert "H2_DIR" not in env and "JAVA_TOOL_OPTIONS" not in env  # the image's ENV has them
    deployment = rendered(generated, "dev", image="localhost/apps/h2@sha256:" + "a" * 64)["Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/apps/h2@sha256:" + "a" * 64


def test_the_playable_copy_has_every_adaptation(generated: Path, tmp_path: Path) -> None:
    deployment = rendered(generated, "dev")["Deployment"]
    result = play.playable(deployment, None, tmp_path / "work")
    spec = play.pod_spec(result.deployment)
    container = spec["containers"][0]
    assert sorted(result.dropped_env) == ["NODE_NAME", "POD_IP", "POD_NAMESPACE"]
    refs = {e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert not refs & set(play.UNSUPPORTED_FIELD_REFS)
    assert "ports" not in container
    assert {"name": "termination-log", "mountPath": "/dev/termination-log"} in container["volumeMounts"]
    assert result.termination_log.read_text() == ""
    # the rendered object is untouched: the kubelet stand-in reads probes and named ports there
    original = play.pod_spec(deployment)["containers"][0]
    assert original["ports"] and any(e["name"] == "POD_IP" for e in original["env"])


@pytest.mark.parametrize(("env", "image", "message"), [
    ("staging", None, "--env: 'staging' names no environment of"),
    ("dev", "no-tag", "--image: 'no-tag' is not REPOSITORY:TAG or REPOSITORY@DIGEST"),
])
def test_bad_input_is_one_line(generated: Path, env: str, image: str | None, message: str) -> None:
    with pytest.raises(GenError) as info:
        rendered(generated, env, image)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_command_line_refuses_bad_input_with_one_line(generated: Path, tmp_path: Path) -> None:
    def run(*args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dockerfile_gen", "pod", *args], capture_output=True, text=True,
                              env={"PATH": path}, timeout=60)
    missing = run(str(tmp_path / "nowhere"), "--env", "dev")
    assert missing.returncode == 65 and missing.stderr.count("\n") == 1 and "is not a directory" in missing.stderr
    bad = run(str(generated), "--env", "dev", "--until-ready", "0")
    assert bad.returncode == 65 and "--until-ready: 0 must be a number of seconds above 0" in bad.stderr
    no_podman = run(str(generated), "--env", "dev", path=str(tmp_path))
    assert no_podman.returncode == 69 and "podman is not installed" in no_podman.stderr
    usage = run(str(generated))
    assert usage.returncode == 64 and "--env" in usage.stderr
