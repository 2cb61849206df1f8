"""`dockerfile-gen app` output renders through the chart: values.yaml with each values-<env>.yaml
layered on top (as `helm -f -f`) passes the schema, every check and strict validation of every
object; values.yaml alone is refused (it has no app.env). tests/chart/test_seams.py checks what the
rendered objects say against the spec."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import chart as chartlib
from tests.support.chart import MICROSERVICE, REPO
from tests.support.prereq import require

pytestmark = pytest.mark.chart

SPEC = """\
name: orders
type: springboot
java: 17
artifact: orders.jar
ports: [8080, 9090]
ready: {tcp: 8080, timeout: 180}
resources: {requests: {cpu: 500m, memory: 768Mi}, limits: {cpu: "2", memory: 1536Mi}}
autoscaling: {min: 3, max: 12, cpu: 70, memory: 80}
ingress: {host: orders.example.com, path: /}
env_overrides:
  prod: {autoscaling: {min: 4, max: 20, cpu: 60, memory: 80}}
  qa: {autoscaling: false, replicas: 1}
"""


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of two -f files: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_generated_values_render_and_validate(tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "dockerfile-gen"
    require(generator.exists(), "dockerfile-gen is not installed in the venv (scripts/install-deps.sh)")
    (tmp_path / "orders").mkdir()
    for env in ("common", "qa", "prod"):
        (tmp_path / "orders" / "conf.d" / env).mkdir(parents=True)
        (tmp_path / "orders" / "conf.d" / env / "application.properties").write_text(f"env={env}\n")
    (tmp_path / "orders" / "app.yaml").write_text(SPEC)
    (tmp_path / "orders" / "orders.jar").write_bytes(b"")
    out = tmp_path / "out"
    done = subprocess.run([str(generator), "app", str(tmp_path / "orders" / "app.yaml"), "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    base = chartlib.load_values(out / "values.yaml")
    layers = {p.name: merged(base, chartlib.load_values(p)) for p in sorted(out.glob("values-*.yaml"))}
    assert sorted(layers) == ["values-prod.yaml", "values-qa.yaml"]
    for path in out.glob("values*.yaml"):
        assert chartlib.yamllint_problems(path.read_text(), chartlib.YAMLLINT_VALUES_CONFIG) == [], path.name
    for name, values in layers.items():
        rendered = chartlib.render(MICROSERVICE, values)
        for obj in rendered.objects:
            for version in chartlib.kube_versions():
                chartlib.validate(obj, version)
        assert rendered.env["APP_NAME"] == "orders", name
        assert rendered.env["BOOTSTRAP_READY_TIMEOUT"] == "180", name  # the agent's startup deadline
        assert "tcpSocket" in rendered.container["startupProbe"], name
    prod = chartlib.render(MICROSERVICE, layers["values-prod.yaml"])
    assert prod.env["APP_ENV"] == "prod"
    assert prod.one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 20
    qa = chartlib.render(MICROSERVICE, layers["values-qa.yaml"])
    assert qa.env["APP_ENV"] == "qa" and not qa.has("HorizontalPodAutoscaler") and qa.one("Deployment")["spec"]["replicas"] == 1
