"""The rendered Deployment made playable by `podman kube play` (podman 4.3), as docs/chart.md lists:

- a downward-API fieldRef to `status.podIP`, `spec.nodeName` or `metadata.namespace` makes it refuse
  the whole pod: those env entries are dropped (the agent finds its IP from the default route;
  NODE_NAME and POD_NAMESPACE stay unset);
- it publishes every containerPort on the node's port of the same number: the played copy has no
  `ports` (the pod IP reaches them all; the kubelet stand-in reads the named ports from the
  rendered spec);
- it ignores `subPath` on a configMap volume: each key of the rendered ConfigMap is written to a
  host file and mounted (hostPath, File) at the same mountPath;
- it mounts no `/dev/termination-log`: a host file is mounted there, read as the kubelet reads it.

Probes, preStop and the grace period are the kubelet stand-in's (kubelet.py). The functions here
change copies, never the rendered objects.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNSUPPORTED_FIELD_REFS = ("status.podIP", "spec.nodeName", "metadata.namespace")
TERMINATION_LOG = "/dev/termination-log"


@dataclass(frozen=True)
class Playable:
    """What `podman kube play` gets, and what was changed to get there."""

    deployment: dict[str, Any]  # the copy to play
    configmap: dict[str, Any] | None
    dropped_env: tuple[str, ...]  # env entries podman refuses
    termination_log: Path  # the host file behind /dev/termination-log


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"] if "template" in obj.get("spec", {}) else obj["spec"]
    return spec


def drop_unsupported_field_refs(container: dict[str, Any]) -> list[str]:
    """Removes the env entries podman refuses from `container`; returns their names."""
    kept, dropped = [], []
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref in UNSUPPORTED_FIELD_REFS:
            dropped.append(entry["name"])
        else:
            kept.append(entry)
    container["env"] = kept
    return dropped


def without_container_ports(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy without `ports` in its containers: podman would publish each on the node."""
    played = copy.deepcopy(obj)
    for container in pod_spec(played)["containers"]:
        container.pop("ports", None)
    return played


def subpath_config_mounts_as_files(spec: dict[str, Any], configmap: dict[str, Any], where: Path) -> None:
    """Each subPath mount of the ConfigMap becomes a host file under `where`, mounted read-only."""
    names = {v["name"] for v in spec.get("volumes", []) if v.get("configMap", {}).get("name") == configmap["metadata"]["name"]}
    where.mkdir(parents=True, exist_ok=True)
    container = spec["containers"][0]
    for n, mount in enumerate(container.get("volumeMounts", [])):
        if mount["name"] in names and mount.get("subPath"):
            host_file = where / mount["subPath"]
            host_file.write_text(configmap.get("data", {}).get(mount["subPath"], ""))
            volume = f"config-file-{n}"
            spec["volumes"].append({"name": volume, "hostPath": {"path": str(host_file), "type": "File"}})
            container["volumeMounts"][n] = {"name": volume, "mountPath": mount["mountPath"], "readOnly": True}


def mount_termination_log(spec: dict[str, Any], host_file: Path) -> None:
    """Writable by any user, as the kubelet's is: the agent may run as the app's user."""
    host_file.write_text("")
    host_file.chmod(0o666)
    spec.setdefault("volumes", []).append({"name": "termination-log", "hostPath": {"path": str(host_file), "type": "File"}})
    spec["containers"][0].setdefault("volumeMounts", []).append({"name": "termination-log", "mountPath": TERMINATION_LOG})


def playable(deployment: dict[str, Any], configmap: dict[str, Any] | None, work: Path) -> Playable:
    """The Deployment with every adaptation above; host files go under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    played = copy.deepcopy(deployment)
    spec = pod_spec(played)
    dropped = drop_unsupported_field_refs(spec["containers"][0])
    if configmap is not None:
        subpath_config_mounts_as_files(spec, configmap, work / "configmap-files")
    termination_log = work / "termination-log"
    mount_termination_log(spec, termination_log)
    return Playable(without_container_ports(played), configmap, tuple(dropped), termination_log)
