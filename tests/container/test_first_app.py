"""README's "Your first app", run as written, from a fresh copy of the repository: every shell block
marked `<!-- first-app -->`, in order, with bash -e. Three things are set by the test and nowhere
else: `make deps` is skipped (the tier's machine has the tools: its fixtures require them), the
registry lines (`MASTER=`, `REPLICATE=`) name two docker-registry processes of the test's own, and
podman runs on the tier's private engine. The time from the copy to the ready pod is recorded, cold
(nothing built) and warm (the same commands again), for docs/benchmarks.md.

Beside it, the spec's per-environment `env` and `jvm_options` seen inside the running JVM (its
-XX:+PrintFlagsFinal and /proc/PID/environ), with the default start command and an exec-form one.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.podman_engine import REPO, Engine, compile_app, record
from tests.support.registries import RegistryProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.container

MARKER = "<!-- first-app -->"
SKIPPED = ("make deps",)  # machine setup the tier has done
COPY_LEFT_OUT = {".git", ".venv", ".cache", "out"}  # what a fresh clone does not have


def blocks() -> list[str]:
    """The marked shell blocks of the README's "Your first app" section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Your first app\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(re.escape(MARKER) + r"\n```sh\n(.*?)```", section, flags=re.S)
    assert len(found) >= 5, "the walkthrough's blocks are marked with " + MARKER
    return found


def fresh_copy(dest: Path) -> Path:
    def ignore(directory: str, names: list[str]) -> set[str]:
        top = Path(directory).resolve() == REPO
        return {n for n in names if (top and n in COPY_LEFT_OUT) or n in ("__pycache__", ".pytest_cache")
                or n.endswith(".egg-info")}
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


class Walkthrough:
    def __init__(self, engine: Engine, clone: Path, registries: dict[str, str]) -> None:
        self.engine, self.clone, self.registries = engine, clone, registries
        self.env = {**engine.env, "PATH": f"{REPO / '.venv' / 'bin'}:{engine.env.get('PATH', '/usr/bin:/bin')}"}

    def script(self, block: str) -> str:
        lines = []
        for line in block.splitlines():
            if line.strip().startswith(SKIPPED):
                line = ":  # skipped by the test: " + line
            name = line.split("=", 1)[0]
            if name in self.registries:
                line = f"{name}={self.registries[name]}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def run(self, block: str, timeout: float = 2400) -> tuple[float, str]:
        began = time.monotonic()
        result = subprocess.run(["bash", "-e", "-c", self.script(block)], cwd=self.clone, env=self.env,
                                capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, f"{block}\nexited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return time.monotonic() - began, result.stdout + result.stderr


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RegistryProcess]]:
    root = tmp_path_factory.mktemp("first-app-registries")
    master, replica = RegistryProcess("master", root), RegistryProcess("replica", root)
    master.start()
    replica.start()
    yield {"master": master, "replica": replica}
    master.stop()
    replica.stop()


@pytest.fixture(scope="module")
def walkthrough(engine: Engine, registries: dict[str, RegistryProcess],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    clone = fresh_copy(tmp_path_factory.mktemp("first-app") / "k8s-java-bootstrap")
    master, replica = registries["master"], registries["replica"]
    yield Walkthrough(engine, clone, {"MASTER": master.host,
                                      "REPLICATE": f'"--no-tls-verify --replicate-to {replica.host}"'})
    engine.podman("rm", "--force", "hello-jar", check=False)
    shutil.rmtree("/tmp/hello-logs", ignore_errors=True)


def test_the_walkthrough_runs_as_written(walkthrough: Walkthrough, registries: dict[str, RegistryProcess]) -> None:
    tools, image, pod, direct, push = blocks()[:5]
    cold = {}
    cold["tree"], _ = walkthrough.run(tools)
    cold["image"], _ = walkthrough.run(image)
    cold["pod"], said = walkthrough.run(pod)
    assert re.search(r"ready: the readiness probe passed", said) and "removed pod hello-jar-dev-pod-0" in said, said
    _, said = walkthrough.run(direct)
    assert '"state": "ready"' in said, said
    _, said = walkthrough.run(push)
    digest = registries["master"].digest("apps/hello-jar", "1.0.0")
    assert digest is not None and registries["replica"].digest("apps/hello-jar", "1.0.0") == digest, said
    warm = {}
    for name, block in (("tree", tools), ("image", image), ("pod", pod)):
        warm[name], _ = walkthrough.run(block)
    record("first_app", {"cold": {k: round(v, 1) for k, v in cold.items()}, "cold_total": round(sum(cold.values()), 1),
                         "warm": {k: round(v, 1) for k, v in warm.items()}, "warm_total": round(sum(warm.values()), 1),
                         "load_average": round(os.getloadavg()[0], 1)})
    print(f"first app: cold {sum(cold.values()):.1f}s {cold}, warm {sum(warm.values()):.1f}s {warm}")


# --- env and jvm_options, per environment, inside the running JVM --------------------------------

ENV_SPEC = {
    "env": {"GREETING": "hello", "TEAM": "platform"},
    "jvm_options": ["-XX:+PrintFlagsFinal", "-XX:+UseSerialGC", "-Xss512k"],
    "env_overrides": {"prod": {"env": {"GREETING": "hello prod"},
                               "jvm_options": ["-Xss768k", "-XX:AutoBoxCacheMax=4096"]}},
}
START_FORMS = {"default": None, "exec": ["java", "-jar", "/app/hello-jar.jar"]}


def flag(output: str, name: str) -> str:
    match = re.search(rf"^\s*\S+\s+{name}\s+=\s+(\S+)", output, flags=re.M)
    assert match, f"{name} not in -XX:+PrintFlagsFinal's output"
    return match.group(1)


@pytest.mark.parametrize("form", sorted(START_FORMS))
def test_env_and_jvm_options_per_environment_reach_the_running_jvm(walkthrough: Walkthrough, engine: Engine,
                                                                   form: str, tmp_path: Path) -> None:
    walkthrough.run(blocks()[0])  # the tree (unchanged when the walkthrough ran first)
    context = tmp_path / "hello-jar"
    compile_app(REPO / "examples" / "apps" / "hello-jar", context, "jar")
    spec = yaml.safe_load((context / "app.yaml").read_text())
    spec.update(ENV_SPEC)
    if START_FORMS[form]:
        spec["start"] = START_FORMS[form]
    (context / "app.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", f"env-{form}")
    image = f"localhost/apps/hello-jar:env-{form}"
    engine.podman("build", "--format", "docker", "--network", "host", "-t", image, "-f", str(out / "Dockerfile"), str(context))
    seen = {env: _run_in(engine, tmp_path, image, out, env) for env in ("dev", "prod")}
    dev, prod = seen["dev"], seen["prod"]
    assert flag(dev[0], "ThreadStackSize") == "512" and flag(prod[0], "ThreadStackSize") == "768"
    assert flag(dev[0], "AutoBoxCacheMax") == "128" and flag(prod[0], "AutoBoxCacheMax") == "4096"
    assert flag(dev[0], "UseSerialGC") == flag(prod[0], "UseSerialGC") == "true"  # the base's, in both
    assert (dev[1]["GREETING"], prod[1]["GREETING"]) == ("hello", "hello prod")
    assert dev[1]["TEAM"] == prod[1]["TEAM"] == "platform"
    # the agent's own flags and the spec's in one JAVA_TOOL_OPTIONS, the spec's last (they win)
    assert prod[1]["JAVA_TOOL_OPTIONS"].endswith("-XX:+PrintFlagsFinal -XX:+UseSerialGC -Xss768k -XX:AutoBoxCacheMax=4096")


def _run_in(engine: Engine, tmp_path: Path, image: str, out: Path, env: str) -> tuple[str, dict[str, str]]:
    """Runs the image in `env` as the chart would set it up (APP_ENV and the env file's `env`):
    the JVM's -XX:+PrintFlagsFinal output and its environment."""
    values = yaml.safe_load((out / f"values-{env}.yaml").read_text()) or {}
    extra = [w for e in values.get("env", []) for w in ("-e", f"{e['name']}={e['value']}")]
    logs = tmp_path / f"logs-{env}"
    logs.mkdir()
    os.chmod(logs, 0o3753)
    name = f"env-{env}-{image.rsplit(':', 1)[1]}"
    engine.podman("run", "-d", "--name", name, "-e", f"APP_ENV={env}", *extra, "-v", f"{logs}:/data/logs", image)
    try:
        wait_until(lambda: engine.podman("exec", name, "test", "-e", "/run/bootstrap/ready", check=False).returncode == 0,
                   timeout=120)
        pid = str(yaml.safe_load(engine.podman("exec", name, "cat", "/run/bootstrap/status.json").stdout)["pid"])
        uid = engine.podman("exec", name, "stat", "-c", "%u", f"/proc/{pid}").stdout.strip()
        environ = engine.podman("exec", "--user", uid, name, "cat", f"/proc/{pid}/environ").stdout  # its own user may
        env_vars = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
        return engine.podman("logs", name).stdout, env_vars
    finally:
        engine.podman("rm", "--force", name, check=False)
