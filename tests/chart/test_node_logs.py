"""The node-side log browser: one read-only nginx per node over the apps' log root."""
from __future__ import annotations

import pytest

from tests.support import chart as chartlib
from tests.support.chart import NODE_LOGS, Rendered

pytestmark = pytest.mark.chart


def render(values: dict | None = None) -> Rendered:
    return chartlib.render(NODE_LOGS, values or {}, name="node-logs", namespace="logging")


def test_serves_the_log_root_read_only() -> None:
    # Without the node setup, a browser alone never creates the log root.
    alone = render({"logs": {"hostPath": "/data/logs", "setup": {"enabled": False}}}).one("DaemonSet")
    assert {"name": "logs", "hostPath": {"path": "/data/logs", "type": "Directory"}} in alone["spec"]["template"]["spec"]["volumes"]
    assert "initContainers" not in alone["spec"]["template"]["spec"]
    ds = render().one("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "logs", "mountPath": "/logs", "readOnly": True} in container["volumeMounts"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert "hostPort" not in container["ports"][0]


def test_nginx_lists_directories_and_only_reads() -> None:
    conf = render().one("ConfigMap")["data"]["nginx.conf"]
    for directive in ("autoindex on;", "root /logs;", "disable_symlinks on;", "listen 8080;", "pid /tmp/nginx.pid;"):
        assert directive in conf
    assert "limit_except GET" in conf


def test_log_root_and_host_port_are_values() -> None:
    r = render({"logs": {"hostPath": "/srv/logs"}, "hostPort": 8081})
    pod = r.one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["hostPath"]["path"] == "/srv/logs"
    assert pod["containers"][0]["ports"][0]["hostPort"] == 8081
    assert "http://<node IP>:8081/" in r.notes


def test_matches_the_microservice_default_log_root() -> None:
    micro = chartlib.load_values(chartlib.MICROSERVICE / "values.yaml")
    nodes = chartlib.load_values(NODE_LOGS / "values.yaml")
    assert micro["logs"]["hostPath"] == nodes["logs"]["hostPath"]


def test_sets_up_the_log_root_for_apps_of_their_own_uids() -> None:
    """The node setup: an init container, root with CHOWN and FSETID only, makes the log root
    root:10000 mode 3753; the browser reads as a member of that group."""
    pod = render().one("DaemonSet")["spec"]["template"]["spec"]
    assert {"name": "logs", "hostPath": {"path": "/data/logs", "type": "DirectoryOrCreate"}} in pod["volumes"]
    (setup,) = pod["initContainers"]
    assert setup["command"] == ["sh", "-c", "chown 0:10000 /logs && chmod 3753 /logs"]
    sc = setup["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FSETID"]}
    assert (sc["runAsUser"], sc["allowPrivilegeEscalation"], sc["readOnlyRootFilesystem"]) == (0, False, True)
    assert pod["securityContext"]["supplementalGroups"] == [10000]
    other = render({"logs": {"hostPath": "/data/logs", "supplementalGroups": [4], "setup": {"readerGroup": 4242}}})
    assert other.one("DaemonSet")["spec"]["template"]["spec"]["securityContext"]["supplementalGroups"] == [4, 4242]
