"""The chart's side of config reload: the ConfigMap mounted as a directory (never subPath, which the
kubelet never updates), the checksum annotation with `reload.action: rollout` (the default), and
BOOTSTRAP_RELOAD instead of it for every other action."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support import chart as chartlib
from tests.support.chart import CASES, MICROSERVICE, Rendered

pytestmark = pytest.mark.chart

BASE: dict[str, Any] = {"image": {"repository": "registry.local:5000/apps/orders", "tag": "1.4.2"}, "app": {"env": "qa"}}
FILES = {"application.properties": "a=1\n", "logback.xml": "<configuration/>\n"}


def render(**overrides: Any) -> Rendered:
    values = copy.deepcopy(BASE)
    values.update(overrides)
    return chartlib.render(MICROSERVICE, values)


def annotations(r: Rendered) -> dict[str, str]:
    return dict(r.one("Deployment")["spec"]["template"]["metadata"].get("annotations") or {})


def checksum(**overrides: Any) -> str | None:
    return annotations(render(**overrides)).get("checksum/config")


def test_checksum_changes_with_the_configmaps_content_and_only_then() -> None:
    base = checksum(configFiles={"files": FILES})
    assert base is not None
    assert checksum(configFiles={"files": dict(FILES)}) == base  # the same content
    assert checksum(configFiles={"files": {**FILES, "application.properties": "a=2\n"}}) != base  # a byte
    assert checksum(configFiles={"files": {**FILES, "extra.properties": ""}}) != base  # a key added
    assert checksum(configFiles={"files": {"application.properties": "a=1\n"}}) != base  # a key removed
    # Nothing else of the release moves it: not the replicas, the image, the env or the agent timings.
    assert checksum(configFiles={"files": FILES}, replicaCount=7, image={**BASE["image"], "tag": "1.4.3"},
                    agent={"drainSeconds": 9}, env=[{"name": "JAVA_OPTS", "value": "-Xss1m"}]) == base
    assert checksum(configFiles={"files": FILES}, reload={"action": "rollout", "spread": 30}) == base
    # And it is the ConfigMap's content: the rendered ConfigMap holds exactly these files.
    assert render(configFiles={"files": FILES}).one("ConfigMap")["data"] == FILES


@pytest.mark.parametrize("action", ["restart", "signal:HUP", "http:http://127.0.0.1:8080/actuator/refresh", "exit", "off"])
def test_any_other_action_sets_bootstrap_reload_and_drops_the_annotation(action: str) -> None:
    r = render(configFiles={"files": FILES}, reload={"action": action, "spread": 45})
    assert "checksum/config" not in annotations(r)
    assert r.env["BOOTSTRAP_RELOAD"] == action and r.env["BOOTSTRAP_RELOAD_SPREAD"] == "45"
    assert "BOOTSTRAP_RELOAD_CHECK" not in r.env  # empty check: the image's bootstrap.yaml decides


def test_rollout_sets_no_reload_variable() -> None:
    r = render(configFiles={"files": FILES})
    assert not {"BOOTSTRAP_RELOAD", "BOOTSTRAP_RELOAD_SPREAD", "BOOTSTRAP_RELOAD_CHECK"} & set(r.env)
    assert r.env["BOOTSTRAP_CONF_OVERLAY"] == "/app/conf.configmap"
    assert "BOOTSTRAP_CONF_OVERLAY" not in render().env  # no files, no overlay


def test_reload_case() -> None:
    r = chartlib.render_case("reload-restart")
    assert r.env["BOOTSTRAP_RELOAD"] == "restart" and r.env["BOOTSTRAP_RELOAD_SPREAD"] == "100"
    assert r.env["BOOTSTRAP_RELOAD_CHECK"] == "bin/check-config conf.configmap"
    assert "annotations" not in r.one("Deployment")["spec"]["template"]["metadata"]


def _config_mounts(r: Rendered) -> list[dict[str, Any]]:
    volumes = {v["name"] for v in r.pod_spec.get("volumes", []) if "configMap" in v}
    return [m for c in r.pod_spec["containers"] for m in c.get("volumeMounts", []) if m["name"] in volumes]


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_subpath_is_never_used_for_config(case: str) -> None:
    r = chartlib.render_case(case)
    if not r.has("Deployment"):
        return
    for mount in _config_mounts(r):
        assert "subPath" not in mount and "subPathExpr" not in mount, (case, mount)


@pytest.mark.parametrize("action", ["rollout", "restart"])
def test_the_configmap_is_one_directory_mount(action: str) -> None:
    r = render(configFiles={"files": FILES}, reload={"action": action}, agent={"appHome": "/opt/app/"})
    (mount,) = _config_mounts(r)
    assert mount == {"name": "config", "mountPath": "/opt/app/conf.configmap", "readOnly": True}
    assert r.env["BOOTSTRAP_CONF_OVERLAY"] == mount["mountPath"]


@pytest.mark.parametrize("name", ["BOOTSTRAP_RELOAD", "BOOTSTRAP_RELOAD_SPREAD", "BOOTSTRAP_RELOAD_CHECK",
                                  "BOOTSTRAP_CONF_OVERLAY"])
def test_reload_variables_are_set_by_the_chart_only(name: str) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=f"{name} is set by the chart"):
        render(env=[{"name": name, "value": "x"}])
