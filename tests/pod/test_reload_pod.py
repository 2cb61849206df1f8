"""Config reload in a played pod: the chart rendered with `reload.action: restart`, its ConfigMap a
host directory the test writes the kubelet's way (timestamped directory, `..data` renamed over,
key links), mounted where the chart mounts the ConfigMap. On a change the agent restarts the app
inside the container while the kubelet stand-in runs the rendered probes: readiness goes false and
true again, liveness never fails, the container is not restarted.

The drain (4 s) outlasts the readiness probe's failureThreshold × periodSeconds (3 × 1 s), as it
should in a real cluster: the pod leaves the Service's endpoints before its app stops."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.pod.kubelet import Kubelet
from tests.pod.conftest import CONFIG_FILE, CONFIG_TEXT, Played, node_log_root, play, render_for_pod, stand_in, unplay
from tests.podman_engine import Engine
from tests.support.configmap_volume import ConfigMapVolume
from tests.support.waiting import wait_until

pytestmark = pytest.mark.pod

RELEASE = "i21-hello-jar"
NETWORK = "i21-pods"
SUBNET = "10.200.21.0/24"
RELOAD_VALUES: dict[str, Any] = {"reload": {"action": "restart", "spread": 0},
                                 "agent": {"drainSeconds": 4},
                                 "env": [{"name": "BOOTSTRAP_RELOAD_DEBOUNCE", "value": "1"}]}


@dataclass
class ReloadPod:
    played: Played
    volume: ConfigMapVolume

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.played.exec("cat", "/run/bootstrap/status.json").stdout))

    def journal(self) -> list[dict[str, Any]]:
        return [json.loads(line) for path in self.played.log_root.rglob(".bootstrap.jsonl")
                for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def pod(app_image: Path, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReloadPod]:
    work = tmp_path_factory.mktemp("i21-pod")
    log_root = node_log_root(work)
    objects = render_for_pod(app_image, log_root, RELEASE, RELOAD_VALUES)
    annotations = objects["Deployment"]["spec"]["template"]["metadata"].get("annotations") or {}
    assert "checksum/config" not in annotations  # the agent reloads: no rollout on a change
    volume = ConfigMapVolume(work / "configmap")
    volume.dir.chmod(0o755)  # the app's user reads it through the mount
    volume.write(dict(objects["ConfigMap"]["data"]))
    played = play(engine, work, objects, log_root, NETWORK, SUBNET, configmap_dir=volume.dir)
    try:
        yield ReloadPod(played, volume)
    finally:
        unplay(played, NETWORK)


@pytest.fixture(scope="module")
def kubelet(pod: ReloadPod) -> Iterator[Kubelet]:
    yield from stand_in(pod.played)


def test_configmap_change_restarts_the_app_in_the_pod(pod: ReloadPod, kubelet: Kubelet) -> None:
    played = pod.played
    assert kubelet.wait_for(kubelet.ready, timeout=180), kubelet.events
    assert played.exec("cat", f"/app/conf/{CONFIG_FILE}").stdout == CONFIG_TEXT
    # The watcher's baseline (PID 1 puts its hash in status.json): a change is seen from here on.
    before = wait_until(lambda: (lambda s: s if (s.get("config") or {}).get("hash") else None)(pod.status()),
                        timeout=30, interval=0.5)
    started = played.inspect()["State"]["StartedAt"]

    since = time.time()
    pod.volume.write({**pod.volume.read(), CONFIG_FILE: CONFIG_TEXT + "version=2\n", "added.properties": "new=1\n"})
    assert kubelet.wait_for(lambda: kubelet.first("readiness", "Failure", after=since) is not None, 60), kubelet.events
    not_ready = kubelet.first("readiness", "Failure", after=since)
    assert not_ready is not None
    assert kubelet.wait_for(lambda: kubelet.first("readiness", "Success", after=not_ready.at) is not None, 120), \
        kubelet.events
    # Liveness keeps probing after the app is ready again: wait for two of its probes past that point.
    probed = kubelet.probed.get("liveness", 0)
    assert kubelet.wait_for(lambda: kubelet.probed.get("liveness", 0) >= probed + 2,
                            3 * float(played.spec["livenessProbe"].get("periodSeconds", 10)) + 5), kubelet.events

    after = pod.status()
    last = after["config"]["last_reload"]
    assert (last["action"], last["result"]) == ("restart", "ok"), last
    assert sorted(last["changed"]) == ["added.properties", CONFIG_FILE]
    assert after["pid"] != before["pid"] and after["state"] == "ready", after
    assert kubelet.first("liveness", "Failure", after=since) is None, kubelet.events  # the live port stayed open
    assert kubelet.first("restarted", after=since) is None, kubelet.events
    assert played.inspect()["State"]["StartedAt"] == started  # the same container: no restart
    assert played.exec("cat", f"/app/conf/{CONFIG_FILE}").stdout == CONFIG_TEXT + "version=2\n"
    assert played.exec("cat", "/app/conf/added.properties").stdout == "new=1\n"
    assert [r["event"] for r in pod.journal()] == ["start", "reload"], pod.journal()
