"""`jvm: auto` in a real container: podman --memory sets the cgroup limit, bootstrap (PID 1 of the
jre-17 base) reads it through the container's own view of the cgroup tree, sizes the JVM, and an
OutOfMemoryError ends as a recorded exit with a heap dump in the bind-mounted log root."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bootstrap.pid1 import jvm
from tests.podman_engine import BASE_PREFIX, REPO, Engine, TreeBuild

sys.path.insert(0, str(REPO / "bench"))
import jvmlab  # noqa: E402

pytestmark = pytest.mark.container
MiB = 1 << 20
IMAGE = f"{BASE_PREFIX}/jre-17:1.0.0"


def container_args(tmp_path: Path, classes: Path, memory: str) -> list[str]:
    (tmp_path / "app" / "conf.d" / "prod").mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    return ["--memory", memory, "--memory-swap", memory, "-e", "APP_NAME=heapfill", "-e", "APP_ENV=prod",
            "-v", f"{tmp_path / 'app'}:/app", "-v", f"{tmp_path / 'logs'}:/data/logs", "-v", f"{classes}:/w:ro"]


def test_container_limit_sizes_the_jvm_and_an_oom_is_recorded(engine: Engine, built_tree: TreeBuild,
                                                                tmp_path: Path) -> None:
    classes = jvmlab.compile_workloads(REPO / ".cache" / "jvm-workloads")
    args = container_args(tmp_path, classes, "512m")
    plan = json.loads(engine.podman("run", "--rm", "--entrypoint", "bootstrap", *args, IMAGE,
                                    "plan", "--json", "--", "java", "-cp", "/w", "HeapFill").stdout)["jvm"]
    assert plan["limits"]["memory"] == 512 * MiB, plan["limits"]
    budget = jvm.budget(512 * MiB)
    assert budget is not None and f"-Xmx{budget.heap // MiB}M" in plan["java_tool_options"].split()

    name = "i12b-heapfill"
    run = engine.podman("run", "--name", name, *args, IMAGE, "java", "-cp", "/w", "HeapFill", check=False)
    try:
        state = json.loads(engine.podman("inspect", name).stdout)[0]["State"]
    finally:
        engine.podman("rm", "--force", "--time", "0", name, check=False)
    assert run.returncode == 3, run.stderr[-3000:]
    assert state["OOMKilled"] is False
    [records] = list((tmp_path / "logs" / "heapfill").glob("*/.bootstrap.jsonl"))
    exit_record = json.loads(records.read_text().splitlines()[-1])
    assert exit_record["reason"] == "out-of-memory-error" and exit_record["oom_error"] == "Java heap space"
    dump = records.parent / Path(exit_record["heap_dump"]).name
    assert exit_record["heap_dump"].startswith("/data/logs/heapfill/")
    assert dump.read_bytes()[:18] == b"JAVA PROFILE 1.0.2"
