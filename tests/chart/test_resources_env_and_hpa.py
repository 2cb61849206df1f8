"""The chart's side of what the generator writes: no default environment, resources replaced whole
with documented defaults, and an HPA only on the metrics given and with a request to scale on."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.support import chart as chartlib
from tests.support.chart import MICROSERVICE

pytestmark = pytest.mark.chart

IMAGE = {"repository": "registry.local:5000/apps/orders", "tag": "1.4.2"}


def values(**top: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"image": dict(IMAGE), "app": {"env": "qa"}}
    out.update(copy.deepcopy(top))
    return out


def render_error(vals: dict[str, Any]) -> tuple[str, str]:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as caught:
        chartlib.render(MICROSERVICE, vals)
    return type(caught.value).__name__, str(caught.value)


# --- 1: no environment has a default ------------------------------------------------------------

def test_chart_has_no_default_environment() -> None:
    defaults = yaml.safe_load((MICROSERVICE / "values.yaml").read_text())
    assert not defaults["app"]["env"]


@pytest.mark.parametrize("app", [{}, {"name": "orders"}, {"name": "orders", "env": ""}])
def test_chart_refuses_to_render_without_app_env(app: dict[str, Any]) -> None:
    kind, message = render_error({"image": dict(IMAGE), "app": app})
    assert kind == "HelmRenderError"
    text = chartlib.fail_message(Exception(message))
    assert "\n" not in text and text.startswith("app.env is required"), text


# --- 2: the HPA scales only on the metrics it was given -----------------------------------------

@pytest.mark.parametrize(("targets", "metrics"), [
    ({"targetCPUUtilizationPercentage": 60}, {"cpu": 60}),
    ({"targetMemoryUtilizationPercentage": 75}, {"memory": 75}),
    ({"targetCPUUtilizationPercentage": 60, "targetMemoryUtilizationPercentage": 75}, {"cpu": 60, "memory": 75}),
])
def test_hpa_scales_only_on_the_metrics_given(targets: dict[str, int], metrics: dict[str, int]) -> None:
    rendered = chartlib.render(MICROSERVICE, values(autoscaling={"enabled": True, **targets}))
    hpa = rendered.one("HorizontalPodAutoscaler")
    got = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert got == metrics


def test_hpa_without_any_target_is_refused() -> None:
    kind, message = render_error(values(autoscaling={"enabled": True}))
    assert kind == "HelmRenderError"
    assert "targetCPUUtilizationPercentage and targetMemoryUtilizationPercentage are null" in message


# --- 3: a user's resources replace the chart's defaults; quantities have a schema ---------------

@pytest.mark.parametrize("resources", [
    {"limits": {"cpu": "2", "memory": "2Gi"}},
    {"requests": {"cpu": "100m"}},
    {"requests": {"memory": "256Mi"}, "limits": {"memory": "256Mi"}},
    {"requests": {"cpu": 1, "memory": "1G"}, "limits": {"cpu": 1.5, "memory": "1e9"}},
])
def test_user_resources_replace_the_defaults(resources: dict[str, Any]) -> None:
    rendered = chartlib.render(MICROSERVICE, values(resources=resources))
    assert rendered.container["resources"] == json.loads(json.dumps(resources))
    for version in chartlib.kube_versions():
        chartlib.validate(rendered.one("Deployment"), version)


def test_limits_only_pod_is_guaranteed_qos() -> None:
    """Kubernetes copies limits into absent requests: both cpu and memory limited → Guaranteed."""
    rendered = chartlib.render(MICROSERVICE, values(resources={"limits": {"cpu": "2", "memory": "2Gi"}}))
    assert "requests" not in rendered.container["resources"]


def test_without_resources_the_documented_defaults_apply() -> None:
    rendered = chartlib.render(MICROSERVICE, values())
    assert rendered.container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@pytest.mark.parametrize(("resources", "where"), [
    ({"cpu": "2", "memory": "4Gi"}, "/resources"),
    ({"requests": {"memory": "8GB"}}, "/resources/requests/memory"),
    ({"limits": {"cpu": "two"}}, "/resources/limits/cpu"),
    ({"limits": {"cpu": "-1"}}, "/resources/limits/cpu"),
    ({"limits": {"memory": ""}}, "/resources/limits/memory"),
    ({"requests": "1Gi"}, "/resources/requests"),
])
def test_resources_schema_refuses_what_the_api_server_would_drop_or_reject(resources: dict[str, Any], where: str) -> None:
    kind, message = render_error(values(resources=resources))
    assert kind == "HelmValuesError"
    assert f"at '{where}'" in message, message


# --- 4: what the chart accepts for an HPA, written once (the schema) ----------------------------

@pytest.mark.parametrize("resources", [
    None,  # the chart's default requests apply
    {"limits": {"cpu": "2", "memory": "2Gi"}},  # Kubernetes copies limits into requests
    {"requests": {"cpu": "500m", "memory": "1Gi"}},
])
def test_hpa_accepts_every_resources_shape_that_has_a_request(resources: dict[str, Any] | None) -> None:
    extra = {} if resources is None else {"resources": resources}
    rendered = chartlib.render(MICROSERVICE, values(autoscaling={
        "enabled": True, "targetCPUUtilizationPercentage": 70, "targetMemoryUtilizationPercentage": 80}, **extra))
    assert rendered.has("HorizontalPodAutoscaler")


@pytest.mark.parametrize(("resources", "resource", "error"), [
    ({"requests": {"memory": "1Gi"}}, "cpu", "at '/resources/requests': missing property 'cpu'"),
    ({"limits": {"cpu": "1"}}, "memory", "at '/resources': missing property 'requests'"),
    ({"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}, "memory", "at '/resources/requests': missing property 'memory'"),
])
def test_hpa_refuses_a_target_without_a_request(resources: dict[str, Any], resource: str, error: str) -> None:
    targets = {"targetCPUUtilizationPercentage": 70} if resource == "cpu" else {"targetMemoryUtilizationPercentage": 80}
    kind, message = render_error(values(autoscaling={"enabled": True, **targets}, resources=resources))
    assert kind == "HelmValuesError"
    assert error in message, message
