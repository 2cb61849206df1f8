"""Push the built tree to a local docker-registry on 127.0.0.1 and pull it back."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.podman_engine import BASE_PREFIX, Engine, TreeBuild, record, tree_build
from tests.support.net import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.container


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "log:\n  level: warn\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: proc.poll() is not None or _answers(f"http://127.0.0.1:{port}/v2/"), timeout=30, interval=0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_and_pull_back(built_tree: TreeBuild, engine: Engine, registry: str) -> None:
    started = time.monotonic()
    # One branch is enough to prove the push path: root → jre-17 → tomcat10.
    pushed = tree_build(engine, "--push", f"{registry}/base", "--no-tls-verify", images=("tomcat10",))
    assert pushed.log.count("pushed to") == 3, pushed.log
    record("registry_push_seconds", round(time.monotonic() - started, 1))
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog", timeout=5) as response:
        catalog = json.load(response)["repositories"]
    assert {"base/root", "base/jre-17", "base/tomcat10"} <= set(catalog)
    remote = f"{registry}/base/tomcat10:1.0.0"
    engine.podman("pull", "--tls-verify=false", remote)
    local_id = engine.podman("image", "inspect", "--format", "{{.Id}}", f"{BASE_PREFIX}/tomcat10:1.0.0").stdout.strip()
    pulled_id = engine.podman("image", "inspect", "--format", "{{.Id}}", remote).stdout.strip()
    assert pulled_id == local_id, "the image that came back is the one that was built"
    labels = json.loads(engine.run("skopeo", "inspect", "--tls-verify=false", f"docker://{remote}").stdout)["Labels"]
    assert labels["org.opencontainers.image.base.name"] == f"{BASE_PREFIX}/jre-17:1.0.0"
