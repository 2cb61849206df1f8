"""Config reload in a played pod: the chart rendered with `reload.action: restart`, its ConfigMap a
host directory the test writes the kubelet's way (tests/support/configmap_volume.py: timestamped
directory, `..data` renamed over, key links), mounted where the chart mounts the ConfigMap. On a
change the agent restarts the app inside the container, while the kubelet stand-in runs the
rendered probes: readiness goes false and true again, liveness never fails, the container is not
restarted."""
from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockerfile_gen.pod.kubelet import Kubelet
from dockerfile_gen.pod.play import drop_unsupported_field_refs, mount_termination_log, without_container_ports
from dockerfile_gen.pod.podman import Podman, PodmanRuntime
from tests.pod.conftest import CONFIG_FILE, CONFIG_TEXT, NAMESPACE, TEST_VALUES, Played, _exists, _merge
from tests.podman_engine import Engine
from tests.support import chart as chartlib
from tests.support.configmap_volume import ConfigMapVolume

pytestmark = pytest.mark.pod

RELEASE = "i21-hello-jar"
NETWORK = "i21-pods"
SUBNET = "10.200.21.0/24"
RELOAD_VALUES: dict[str, Any] = {"reload": {"action": "restart", "spread": 0},
                                 "env": [{"name": "BOOTSTRAP_RELOAD_DEBOUNCE", "value": "1"}]}


def configmap_as_host_directory(pod_spec: dict[str, Any], configmap: dict[str, Any], where: Path) -> ConfigMapVolume:
    """The ConfigMap volume becomes a host directory written the kubelet's way, mounted at the same path."""
    name = configmap["metadata"]["name"]
    volume = ConfigMapVolume(where)
    where.chmod(0o755)  # the app's user reads it through the mount
    volume.write(dict(configmap["data"]))
    for entry in pod_spec["volumes"]:
        if entry.get("configMap", {}).get("name") == name:
            entry.pop("configMap")
            entry["hostPath"] = {"path": str(where), "type": "Directory"}
    return volume


class ReloadPod:
    def __init__(self, played: Played, volume: ConfigMapVolume) -> None:
        self.played, self.volume = played, volume

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.played.exec("cat", "/run/bootstrap/status.json").stdout))


@pytest.fixture(scope="module")
def pod(app_image: Path, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReloadPod]:
    work = tmp_path_factory.mktemp("i21-pod")
    log_root = work / "node-logs"
    log_root.mkdir(mode=0o777)
    values = _merge(chartlib.load_values(app_image / "values.yaml"), copy.deepcopy(TEST_VALUES))
    qa = app_image / "values-qa.yaml"
    if qa.exists():
        values = _merge(chartlib.load_values(qa), values)
    values = _merge(values, copy.deepcopy(RELOAD_VALUES))
    values["logs"] = {"hostPath": str(log_root), "mountPath": "/data/logs"}
    objects = {o["kind"]: o for o in chartlib.render(chartlib.MICROSERVICE, values, name=RELEASE,
                                                      namespace=NAMESPACE).objects}
    deployment, configmap = objects["Deployment"], objects["ConfigMap"]
    assert "checksum/config" not in (deployment["spec"]["template"]["metadata"].get("annotations") or {})
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    dropped = drop_unsupported_field_refs(container)
    volume = configmap_as_host_directory(pod_spec, configmap, work / "configmap")
    termination_log = work / "termination-log"
    mount_termination_log(pod_spec, termination_log)
    manifest = work / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(without_container_ports(deployment), sort_keys=False))
    if engine.podman("network", "exists", NETWORK, check=False).returncode != 0:
        engine.podman("network", "create", "--subnet", SUBNET, NETWORK)
    engine.podman("kube", "play", "--network", NETWORK, str(manifest), timeout=300)
    name = deployment["metadata"]["name"]
    pod_name = f"{name}-pod-0" if _exists(engine, f"{name}-pod-0") else f"{name}-pod"
    played = Played(engine, work, manifest, deployment, configmap, pod_name, f"{pod_name}-{container['name']}",
                    log_root, termination_log, dropped)
    try:
        yield ReloadPod(played, volume)
    finally:
        engine.podman("logs", played.container, check=False)
        engine.podman("kube", "down", str(manifest), check=False, timeout=120)
        engine.podman("network", "rm", "--force", NETWORK, check=False)


@pytest.fixture(scope="module")
def kubelet(pod: ReloadPod) -> Iterator[Kubelet]:
    played = pod.played
    stand_in = Kubelet(PodmanRuntime(Podman(played.engine.env), played.container), played.spec, played.pod_spec)
    stand_in.start()
    yield stand_in
    stand_in.close()


def test_configmap_change_restarts_the_app_in_the_pod(pod: ReloadPod, kubelet: Kubelet) -> None:
    played = pod.played
    assert kubelet.wait_for(kubelet.ready, timeout=180), kubelet.events
    assert played.exec("cat", f"/app/conf/{CONFIG_FILE}").stdout == CONFIG_TEXT
    before = pod.status()
    started = played.inspect()["State"]["StartedAt"]
    assert before["config"]["hash"], before

    since = time.time()
    pod.volume.write({**pod.volume.read(), CONFIG_FILE: CONFIG_TEXT + "version=2\n", "added.properties": "new=1\n"})
    not_ready = None
    if kubelet.wait_for(lambda: kubelet.first("readiness", "Failure", after=since) is not None, 60):
        not_ready = kubelet.first("readiness", "Failure", after=since)
    assert not_ready is not None, kubelet.events
    assert kubelet.wait_for(lambda: kubelet.first("readiness", "Success", after=not_ready.at) is not None, 120), \
        kubelet.events
    time.sleep(2 * float(played.spec["livenessProbe"].get("periodSeconds", 10)))  # liveness probes after ready too

    after = pod.status()
    last = after["config"]["last_reload"]
    assert (last["action"], last["result"]) == ("restart", "ok"), last
    assert sorted(last["changed"]) == ["added.properties", CONFIG_FILE]
    assert after["pid"] != before["pid"] and after["state"] == "ready"
    assert kubelet.first("liveness", "Failure", after=since) is None, kubelet.events  # the live port stayed open
    assert kubelet.first("restarted", after=since) is None, kubelet.events
    assert played.inspect()["State"]["StartedAt"] == started  # the same container: no restart
    assert played.exec("cat", f"/app/conf/{CONFIG_FILE}").stdout == CONFIG_TEXT + "version=2\n"
    assert played.exec("cat", "/app/conf/added.properties").stdout == "new=1\n"
    journal = [json.loads(line) for path in played.log_root.rglob(".bootstrap.jsonl") for line in path.read_text().splitlines()]
    assert [r["event"] for r in journal] == ["start", "reload"], journal
