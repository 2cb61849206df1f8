"""The pod tier: an example app's image built on the tree, the chart rendered with the values
dockerfile-gen wrote for it, the Deployment and its ConfigMap given to `podman kube play`, and the
probes run by the product's kubelet stand-in (dockerfile_gen/pod/kubelet.py, which `dockerfile-gen
pod` runs too), with the product's adaptations for podman (dockerfile_gen/pod/play.py) and its view
of the container (dockerfile_gen/pod/podman.py).

What `podman kube play` (podman 4.3) does not do, and what the adaptations do instead:
- it refuses the whole pod on a downward-API fieldRef to `status.podIP` or `spec.nodeName`: those
  two env entries are dropped from the manifest here (the agent then finds its IP itself, from the
  default route; NODE_NAME stays unset). `metadata.name` and `metadata.namespace` work.
- it runs no probes: the kubelet stand-in runs the rendered ones;
- it ignores `terminationGracePeriodSeconds` and runs no preStop hook: the stand-in runs the hook
  with `podman exec` and stops the container with `podman stop -t GRACE`;
- it mounts no `/dev/termination-log`: the harness adds a hostPath file there, so the agent's
  termination message can be read on the host, as the kubelet reads it;
- it ignores `subPath` on a configMap volume (the whole map is mounted as a directory at the
  mountPath): the harness writes each key of the rendered ConfigMap to a host file, as the kubelet
  materialises it, and mounts that file (hostPath, type File) at the same mountPath. The ConfigMap
  is still given to `podman kube play` (`--configmap`) for the volume the pod spec names;
- it publishes every `containerPort` on the node's port of the same number (as if `hostPort` were
  set): the played manifest has no `ports` (the pod IP reaches them all; the stand-in takes the
  named ports from the rendered spec), so pods claim no node ports;
- it plays no DaemonSet ("does not contain any supported kube kind"): the node-logs DaemonSet's
  pod template is played as a Pod, with its nginx container;
- it has no restart of one container in a running pod: the stand-in's restart is `podman stop`
  then `podman start`, which restarts the pod's network namespace too, so the restarted container
  gets a new IP (in Kubernetes the pod keeps its IP) and the agent a new log dir named by it.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockerfile_gen.pod.kubelet import Kubelet
from dockerfile_gen.pod.play import (
    drop_unsupported_field_refs,
    mount_termination_log,
    subpath_config_mounts_as_files,
    without_container_ports,
)
from dockerfile_gen.pod.podman import Podman, PodmanRuntime
from tests.podman_engine import BASE_PREFIX, REPO, Engine, TreeBuild, compile_app
from tests.support import chart as chartlib

APP = "hello-jar"
IMAGE = f"localhost/apps/{APP}:test"
RELEASE = "i11-hello-jar"  # the Deployment's name, so the pod is i11-hello-jar-pod-0
NAMESPACE = "shop"
NETWORK = "i11-pods"  # a bridge of our own, so the pod's address is ours alone
SUBNET = "10.200.11.0/24"
AGENT_HTTP_PORT = 9901  # the agent's /metrics, to see the pod's network counters
LOG_READERS = 10000  # helm/node-logs logs.setup.readerGroup
CONFIG_FILE = "pod.properties"
CONFIG_TEXT = "source=configmap\n"
# Short stop timings keep the tier quick; the grace period is still computed by the chart.
TEST_VALUES: dict[str, Any] = {
    "app": {"env": "qa"},
    "image": {"repository": IMAGE.rsplit(":", 1)[0], "tag": "test", "pullPolicy": "Never"},
    "replicaCount": 1,
    "agent": {"drainSeconds": 1, "stopTimeoutSeconds": 4, "graceMarginSeconds": 3, "liveWindowSeconds": 0,
              "httpPort": AGENT_HTTP_PORT},
    "preStop": {"enabled": True, "command": ["sh", "-c", "echo prestop > /data/logs/.prestop-ran"], "seconds": 1},
    "configFiles": {"files": {CONFIG_FILE: CONFIG_TEXT}},
    "probes": {"liveness": {"periodSeconds": 2}},  # a stopped app is restarted in seconds, not half a minute
}


@dataclass
class Played:
    engine: Engine
    work: Path
    manifest: Path
    deployment: dict[str, Any]
    configmap: dict[str, Any]
    pod: str
    container: str
    log_root: Path  # the hostPath
    termination_log: Path
    dropped: list[str]

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.pod_spec["containers"][0]

    def spec_env(self, name: str) -> str:
        return str(next(e["value"] for e in self.spec["env"] if e["name"] == name))

    def inspect(self) -> dict[str, Any]:
        return json.loads(self.engine.podman("inspect", self.container).stdout)[0]

    def ip(self) -> str:
        networks = self.engine.podman("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                                      self.container).stdout.strip()
        for net in json.loads(networks or "{}").values():
            if net.get("IPAddress"):
                return str(net["IPAddress"])
        raise AssertionError(f"pod {self.pod} has no IP address: {networks}")

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.podman("exec", self.container, *argv, check=check, timeout=60)


@pytest.fixture(scope="module")
def app_image(built_tree: TreeBuild, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app built from its generated Dockerfile on the tree; returns the generator's output dir."""
    work = tmp_path_factory.mktemp("i11-pod-app")
    context = work / APP
    compile_app(REPO / "examples" / "apps" / APP, context, "jar")
    out = work / "gen"
    engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", "test")
    # Host networking for the build's RUN steps: no netavark rules on a node's iptables that other
    # podman users share (a concurrent teardown can remove the chains a bridge build appends to).
    engine.podman("build", "--format", "docker", "--network", "host", "-t", IMAGE, "-f", str(out / "Dockerfile"), str(context))
    return out


def render_for_pod(generated: Path, log_root: Path, release: str = RELEASE,
                   over: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chart rendered with the generated values, the test's overrides on top (as `helm -f -f`)."""
    values = _merge(chartlib.load_values(generated / "values.yaml"), copy.deepcopy(TEST_VALUES))
    qa = generated / "values-qa.yaml"
    if qa.exists():
        values = _merge(chartlib.load_values(qa), values)
    values = _merge(values, copy.deepcopy(over or {}))
    values["logs"] = {"hostPath": str(log_root), "mountPath": "/data/logs"}
    rendered = chartlib.render(chartlib.MICROSERVICE, values, name=release, namespace=NAMESPACE)
    return {obj["kind"]: obj for obj in rendered.objects}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def node_log_root(work: Path) -> Path:
    """The node setup helm/node-logs does (its init container): root, the readers' group, 3753."""
    log_root = work / "node-logs"
    log_root.mkdir()
    os.chown(log_root, 0, LOG_READERS)
    log_root.chmod(0o3753)
    return log_root


def play(engine: Engine, work: Path, objects: dict[str, Any], log_root: Path, network: str, subnet: str,
         configmap_dir: Path | None = None) -> Played:
    """Plays the rendered Deployment with the adaptations for podman. With `configmap_dir`, the
    ConfigMap's directory volume is that host directory instead (the caller writes it the kubelet's
    way, tests/support/configmap_volume.py), so a test can change it while the pod runs."""
    deployment, configmap = objects["Deployment"], objects["ConfigMap"]
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    dropped = drop_unsupported_field_refs(container)
    if configmap_dir is not None:
        for entry in pod_spec["volumes"]:
            if entry.get("configMap", {}).get("name") == configmap["metadata"]["name"]:
                entry.pop("configMap")
                entry["hostPath"] = {"path": str(configmap_dir), "type": "Directory"}
    subpath_config_mounts_as_files(pod_spec, configmap, work / "configmap-files")
    termination_log = work / "termination-log"
    mount_termination_log(pod_spec, termination_log)
    manifest = work / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(without_container_ports(deployment), sort_keys=False))
    cm_file = work / "configmap.yaml"
    cm_file.write_text(yaml.safe_dump(configmap, sort_keys=False))
    if engine.podman("network", "exists", network, check=False).returncode != 0:
        engine.podman("network", "create", "--subnet", subnet, network)
    engine.podman("kube", "play", "--network", network, "--configmap", str(cm_file), str(manifest), timeout=300)
    name = deployment["metadata"]["name"]
    pod = f"{name}-pod-0" if _exists(engine, f"{name}-pod-0") else f"{name}-pod"
    return Played(engine, work, manifest, deployment, configmap, pod, f"{pod}-{container['name']}", log_root,
                  termination_log, dropped)


def unplay(played: Played, network: str) -> None:
    played.engine.podman("logs", played.container, check=False)
    played.engine.podman("kube", "down", str(played.manifest), check=False, timeout=120)
    played.engine.podman("network", "rm", "--force", network, check=False)


@pytest.fixture(scope="module")
def played(app_image: Path, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    work = tmp_path_factory.mktemp("i11-pod")
    log_root = node_log_root(work)
    result = play(engine, work, render_for_pod(app_image, log_root), log_root, NETWORK, SUBNET)
    try:
        yield result
    finally:
        unplay(result, NETWORK)


def stand_in(played: Played) -> Iterator[Kubelet]:
    """The kubelet stand-in probing the played container, for a fixture to yield."""
    kubelet = Kubelet(PodmanRuntime(Podman(played.engine.env), played.container), played.spec, played.pod_spec)
    kubelet.start()
    yield kubelet
    kubelet.close()


NODE_LOGS_IMAGE = "localhost/i11-node-logs:test"


@dataclass
class NodeLogs:
    ip: str
    port: int


@pytest.fixture(scope="module")
def node_logs(played: Played, engine: Engine) -> Iterator[NodeLogs]:
    """helm/node-logs over the app pod's host log root: its nginx image built on the tree's root
    (helm/node-logs/image), its DaemonSet's pod played as a Pod (podman 4.3 plays no DaemonSet)."""
    root_image = engine.podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"{BASE_PREFIX}/root").stdout.split()[0]
    engine.podman("build", "--format", "docker", "--network", "host", "--build-arg", f"BASE={root_image}", "-t", NODE_LOGS_IMAGE,
                  str(REPO / "helm" / "node-logs" / "image"))
    values = {"image": {"repository": NODE_LOGS_IMAGE.rsplit(":", 1)[0], "tag": "test", "pullPolicy": "Never"},
              "logs": {"hostPath": str(played.log_root)}}
    objects = {o["kind"]: o for o in chartlib.render(chartlib.NODE_LOGS, values, name="i11-node-logs").objects}
    daemonset, configmap = objects["DaemonSet"], objects["ConfigMap"]
    template = daemonset["spec"]["template"]
    # The browser's container only: other containers of the DaemonSet (housekeeping) are not ours to play.
    template["spec"]["containers"] = [c for c in template["spec"]["containers"] if c["name"] == "nginx"]
    template["spec"].pop("initContainers", None)  # the node setup: done on the log root by `played`
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": daemonset["metadata"]["name"],
                                                          "labels": template["metadata"]["labels"]},
           "spec": template["spec"]}
    work = played.work / "node-logs-browser"
    work.mkdir()
    subpath_config_mounts_as_files(pod["spec"], configmap, work / "configmap-files")
    manifest, cm_file = work / "pod.yaml", work / "configmap.yaml"
    manifest.write_text(yaml.safe_dump(without_container_ports(pod), sort_keys=False))
    cm_file.write_text(yaml.safe_dump(configmap, sort_keys=False))
    engine.podman("kube", "play", "--network", NETWORK, "--configmap", str(cm_file), str(manifest), timeout=300)
    container = f"{pod['metadata']['name']}-nginx"
    try:
        ip = json.loads(engine.podman("inspect", "--format", "{{json .NetworkSettings.Networks}}", container).stdout)
        port = int(template["spec"]["containers"][0]["ports"][0]["containerPort"])
        yield NodeLogs(next(n["IPAddress"] for n in ip.values() if n.get("IPAddress")), port)
    finally:
        engine.podman("logs", container, check=False)
        engine.podman("kube", "down", str(manifest), check=False, timeout=120)


def _exists(engine: Engine, pod: str) -> bool:
    return engine.podman("pod", "exists", pod, check=False).returncode == 0


@pytest.fixture(scope="module")
def kubelet(played: Played) -> Iterator[Kubelet]:
    yield from stand_in(played)

