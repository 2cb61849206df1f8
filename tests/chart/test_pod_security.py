"""Every rendered pod against the Pod Security Standards (kubernetes.io/docs/concepts/security/
pod-security-standards): "restricted" by default, each of its rules checked on its own, with the
one documented exception, the hostPath log volume (README, "Security"); the opt-in root mode
(agent.user) passes "baseline" apart from that same volume.

Rules checked ("baseline" first, "restricted" adds the rest):
- baseline: no hostNetwork/hostPID/hostIPC; no privileged container; capabilities added only from
  the baseline list; no hostPath volume (the exception); no hostPort; no AppArmor or SELinux
  override beyond the allowed types; /proc mount Default; seccomp not Unconfined; no unsafe sysctl.
- restricted: volume types only configMap, csi, downwardAPI, emptyDir, ephemeral,
  persistentVolumeClaim, projected, secret; allowPrivilegeEscalation false; runAsNonRoot true
  and no runAsUser 0 (pod or container); seccompProfile RuntimeDefault or Localhost; capabilities
  drop ALL, add at most NET_BIND_SERVICE.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.cli import main as generate
from tests.support import chart as chartlib
from tests.support.chart import CASES, MICROSERVICE

pytestmark = pytest.mark.chart

EXCEPTION = "logs"  # the hostPath log volume: the node's log root, shared by every app on the node
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"], *pod.get("ephemeralContainers", [])]


def effective(pod: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    """A securityContext field as the kubelet applies it: the container's, else the pod's."""
    own = container.get("securityContext") or {}
    return own[field] if field in own else (pod.get("securityContext") or {}).get(field)


def baseline_violations(pod: dict[str, Any]) -> list[str]:
    found = [f"{key} is true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    found += [f"volume {v['name']} is a hostPath" for v in pod.get("volumes", []) if "hostPath" in v
              and v["name"] != EXCEPTION]
    sysctls = (pod.get("securityContext") or {}).get("sysctls", [])
    found += [f"sysctl {s['name']} is not safe" for s in sysctls if s["name"] not in SAFE_SYSCTLS]
    for c in containers(pod):
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        found += [f"{name}: adds {cap}" for cap in sorted(added - BASELINE_CAPABILITIES)]
        found += [f"{name}: hostPort {p['hostPort']}" for p in c.get("ports", []) if p.get("hostPort")]
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {sc['procMount']}")
        seccomp = effective(pod, c, "seccompProfile") or {}
        if seccomp.get("type") == "Unconfined":
            found.append(f"{name}: seccomp Unconfined")
        selinux = effective(pod, c, "seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"{name}: seLinuxOptions {selinux}")
        apparmor = effective(pod, c, "appArmorProfile") or {}
        if apparmor.get("type") == "Unconfined":
            found.append(f"{name}: AppArmor Unconfined")
    return found


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    found = baseline_violations(pod)
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if v["name"] != EXCEPTION and not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {v['name']} is a {sorted(kinds)}")
    pod_sc = pod.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    for c in containers(pod):
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if effective(pod, c, "runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser 0")
        if (effective(pod, c, "seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{name}: capabilities do not drop ALL")
        found += [f"{name}: adds {cap}" for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
    return found


def pods(rendered: chartlib.Rendered) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in rendered.objects if o["kind"] in ("Deployment", "DaemonSet")]


BASE: dict[str, Any] = {"image": {"repository": "registry.local:5000/apps/orders", "tag": "1.4.2"}, "app": {"env": "qa"}}
VALID_CASES = sorted(p.stem for p in CASES.glob("*.yaml"))


def test_the_rules_catch_what_they_name() -> None:
    """Guards the guard: each rule fails a pod that breaks it."""
    pod = pods(chartlib.render(MICROSERVICE, BASE))[0]
    assert restricted_violations(pod) == []
    for path, value, rule in [
        (("securityContext", "runAsNonRoot"), False, "runAsNonRoot"),
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True, "allowPrivilegeEscalation"),
        (("containers", 0, "securityContext", "capabilities", "add"), ["CHOWN"], "adds CHOWN"),
        (("containers", 0, "securityContext", "capabilities", "drop"), [], "drop ALL"),
        (("containers", 0, "securityContext", "runAsUser"), 0, "runAsUser 0"),
        (("containers", 0, "securityContext", "privileged"), True, "privileged"),
        (("securityContext", "seccompProfile"), {"type": "Unconfined"}, "seccomp"),
        (("hostNetwork",), True, "hostNetwork"),
        (("volumes",), [{"name": "other", "hostPath": {"path": "/x"}}], "hostPath"),
    ]:
        broken = copy.deepcopy(pod)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert any(rule in v for v in restricted_violations(broken)), (path, restricted_violations(broken))


@pytest.mark.parametrize("case", VALID_CASES)
def test_every_case_pod_is_restricted_or_baseline_in_the_root_mode(case: str) -> None:
    values = chartlib.load_values(CASES / f"{case}.yaml")
    for pod in pods(chartlib.render(MICROSERVICE, values)):
        if (values.get("agent") or {}).get("user"):
            assert baseline_violations(pod) == [], case
            assert "runAsUser 0" in " ".join(restricted_violations(pod))  # the root mode is not "restricted"
        else:
            assert restricted_violations(pod) == [], case


def test_defaults_are_restricted_with_a_read_only_root() -> None:
    pod = pods(chartlib.render(MICROSERVICE, {**BASE, "image": {**BASE["image"], "uid": 20001, "gid": 20001}}))[0]
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 20001
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    kinds = {v["name"]: sorted(set(v) - {"name"}) for v in pod["volumes"]}
    assert [n for n, k in kinds.items() if k != ["emptyDir"] and k != ["configMap"]] == [EXCEPTION]


def test_root_mode_is_opt_in_and_baseline_apart_from_the_host_path() -> None:
    values = {**BASE, "agent": {"user": "20001:20001"}}
    pod = pods(chartlib.render(MICROSERVICE, values))[0]
    assert baseline_violations(pod) == []
    sc = pod["containers"][0]["securityContext"]
    assert sc["runAsUser"] == 0 and sc["readOnlyRootFilesystem"] is True
    assert set(sc["capabilities"]["add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}


def test_writable_directories_are_size_limited_empty_dirs() -> None:
    values = {**BASE, "writable": [{"path": "/app/data", "sizeLimit": "2Gi"}, {"path": "/var/cache/x"}]}
    rendered = chartlib.render(MICROSERVICE, values)
    mounts = {m["mountPath"]: m["name"] for m in rendered.container["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    assert volumes[mounts["/app/data"]]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert volumes[mounts["/var/cache/x"]]["emptyDir"] == {}
    for path in ("/run/bootstrap", "/tmp", "/app/conf"):
        assert "emptyDir" in volumes[mounts[path]], path


@pytest.mark.parametrize("app", sorted(p.parent.name for p in (chartlib.REPO / "examples" / "apps").glob("*/app.yaml")))
def test_every_generated_example_renders_a_pod_of_its_own_uid(app: str, tmp_path: Path) -> None:
    """dockerfile-gen's values for each example: restricted (or, for a WAR that replaces Tomcat's
    config, baseline in the root mode), running as the image's own uid."""
    out = tmp_path / "gen"
    assert generate(["-q", "--tree", str(chartlib.REPO / "image-tree"), "app",
                     str(chartlib.REPO / "examples" / "apps" / app / "app.yaml"), "-o", str(out), "--tag", "1.0.0",
                     "--allow-missing-artifact"]) == 0
    values = chartlib.load_values(out / "values.yaml")
    env = sorted(out.glob("values-*.yaml"))[0]
    for key, value in chartlib.load_values(env).items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    pod = pods(chartlib.render(MICROSERVICE, values))[0]
    if (values.get("agent") or {}).get("user"):
        assert baseline_violations(pod) == []
    else:
        assert restricted_violations(pod) == []
        assert pod["securityContext"]["runAsUser"] == values["image"]["uid"] > 0
