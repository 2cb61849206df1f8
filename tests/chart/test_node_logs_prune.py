"""The node-logs chart's prune container: `bootstrap logs prune` on a period, read-write on the log root
while nginx stays read-only; rendered by the real Helm engine, validated strictly, linted."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bootstrap.node.cli import parse
from bootstrap.sizes import QUANTITY_RE
from tests.support import chart as chartlib
from tests.support.chart import NODE_LOGS, Rendered

pytestmark = pytest.mark.chart

IMAGE = {"repository": "registry.example.com/base/root", "tag": "1.0.0"}
KUBE = chartlib.kube_versions()


def render(prune: dict[str, Any] | None = None) -> Rendered:
    values = {} if prune is None else {"prune": prune}
    return chartlib.render(NODE_LOGS, values, name="node-logs", namespace="logging")


def containers(r: Rendered) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in r.one("DaemonSet")["spec"]["template"]["spec"]["containers"]}


def test_off_by_default_and_nginx_alone() -> None:
    r = render()
    assert list(containers(r)) == ["nginx"]
    assert "prometheus.io/scrape" not in r.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]


@pytest.mark.parametrize("version", KUBE)
def test_prune_container_validates_strict_and_lints(version: str) -> None:
    r = render({"enabled": True, "image": IMAGE, "maxBytes": "200Gi"})
    for obj in r.objects:
        chartlib.validate(obj, version)
    assert chartlib.yamllint_problems(r.stream) == []


def test_prune_writes_the_log_root_and_nginx_only_reads_it() -> None:
    r = render({"enabled": True, "image": IMAGE})
    c = containers(r)
    assert {"name": "logs", "mountPath": "/logs", "readOnly": True} in c["nginx"]["volumeMounts"]
    assert c["prune"]["volumeMounts"] == [{"name": "logs", "mountPath": "/data/logs"}]
    assert c["prune"]["image"] == "registry.example.com/base/root:1.0.0"
    sc = c["prune"]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"]}
    assert c["prune"]["env"] == [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]


def test_values_become_the_command_and_the_cli_accepts_it() -> None:
    r = render({"enabled": True, "image": IMAGE, "periodSeconds": 600, "keepDays": 7, "maxBytes": "50G",
                "compressAfterDays": 2, "metricsPort": 9500})
    command = containers(r)["prune"]["command"]
    assert command == ["bootstrap", "logs", "prune", "--root=/data/logs", "--every=600", "--keep-days=7",
                       "--max-bytes=50G", "--compress-after-days=2", "--metrics-port=9500"]
    options, values = parse(command[3:])  # the agent's own parser takes what the chart renders
    assert (options.keep_days, options.max_bytes, options.compress_after_days) == (7, 50 * 1000**3, 2)
    assert values["--every"] == "600"
    annotations = r.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9500"
    assert containers(r)["prune"]["ports"] == [{"name": "metrics", "containerPort": 9500, "protocol": "TCP"}]


def test_null_values_drop_their_flags() -> None:
    r = render({"enabled": True, "image": IMAGE, "keepDays": None, "compressAfterDays": None,
                "metricsPort": None})
    command = containers(r)["prune"]["command"]
    assert command == ["bootstrap", "logs", "prune", "--root=/data/logs", "--every=3600"]
    assert "ports" not in containers(r)["prune"]
    assert "prometheus.io/scrape" not in r.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]


def test_enabled_without_an_image_fails_with_one_line() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as caught:
        render({"enabled": True})
    message = chartlib.fail_message(caught.value)
    assert message.startswith("prune.image.repository and prune.image.tag are required with prune.enabled")
    assert "\n" not in message


@pytest.mark.parametrize("value", ["10X", "lots", "-1G", "1e9"])
def test_schema_refuses_a_bad_cap(value: str) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="maxBytes"):
        render({"enabled": True, "image": IMAGE, "maxBytes": value})


def test_schema_size_rule_is_the_agents() -> None:
    schema = json.loads((NODE_LOGS / "values.schema.json").read_text())
    assert schema["properties"]["prune"]["properties"]["maxBytes"]["pattern"] == QUANTITY_RE.pattern
    defaults = chartlib.load_values(NODE_LOGS / "values.yaml")["prune"]
    assert set(defaults) == set(schema["properties"]["prune"]["properties"])
    assert re.match(QUANTITY_RE, "500Gi")
