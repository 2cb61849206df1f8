"""Rendering, validating and linting the charts with the real engines, for the chart tests.

Rendering goes through helm-python-sdk (Helm v4's Go SDK in a wheel), validation through
kubernetes-validate's strict schemas, and the output is the stream `helm template` would print.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

MICROSERVICE = REPO / "helm" / "microservice"
NODE_LOGS = REPO / "helm" / "node-logs"
CASES = REPO / "tests" / "chart" / "cases"
SCHEMAS = REPO / "tests" / "chart" / "schemas"

RELEASE = "orders"
NAMESPACE = "shop"
# The oldest Kubernetes the project supports, and the newest kubernetes-validate ships (added below).
OLDEST_KUBE = "1.30.0"

# yamllint's default rules, with sequence indentation left free: toYaml writes sequences flush with
# their key, hand-written template lines indent them, and both are the same YAML.
YAMLLINT_CONFIG = """
extends: default
rules:
  indentation: {spaces: consistent, indent-sequences: whatever}
  line-length: {max: 160}
"""
# Values files are single documents that Helm reads whole, written without a leading `---`.
YAMLLINT_VALUES_CONFIG = YAMLLINT_CONFIG + "  document-start: disable\n"
# Invalid cases carry their expected one-line error message in a header comment, however long.
YAMLLINT_INVALID_CASE_CONFIG = YAMLLINT_VALUES_CONFIG + "  line-length: disable\n"


def kube_versions() -> tuple[str, ...]:
    try:
        import kubernetes_validate.utils as kv
    except ImportError:  # the autouse fixture in conftest.py skips (or fails in CI) every test
        return (OLDEST_KUBE,)
    return (OLDEST_KUBE, kv.latest_version())


@dataclass(frozen=True)
class Rendered:
    """One render: the templates as Helm returned them, and the parsed objects."""

    templates: dict[str, str]

    @property
    def stream(self) -> str:
        """The manifests as `helm template` prints them (NOTES and empty templates left out)."""
        parts = []
        for name in sorted(self.templates):
            text = self.templates[name].strip("\n")
            if name.endswith("NOTES.txt") or not text.strip():
                continue
            parts.append(f"---\n# Source: {name}\n{text}\n")
        return "".join(parts)

    @property
    def notes(self) -> str:
        return next((t for n, t in self.templates.items() if n.endswith("NOTES.txt")), "")

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.stream) if doc]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def one(self, kind: str) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind]
        assert len(found) == 1, f"expected one {kind}, rendered {self.kinds()}"
        return found[0]

    def has(self, kind: str) -> bool:
        return any(o["kind"] == kind for o in self.objects)

    @property
    def container(self) -> dict[str, Any]:
        return self.one("Deployment")["spec"]["template"]["spec"]["containers"][0]

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.one("Deployment")["spec"]["template"]["spec"]

    @property
    def env(self) -> dict[str, Any]:
        """Container env by name: the literal value, or the valueFrom mapping."""
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in self.container["env"]}


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render_case(name: str) -> Rendered:
    """The microservice chart rendered with cases/<name>.yaml."""
    return render(MICROSERVICE, load_values(CASES / f"{name}.yaml"))


def render(chart_dir: Path, values: dict[str, Any], name: str = RELEASE,
           namespace: str = NAMESPACE) -> Rendered:
    import helm_python as helm

    with helm.Chart.load(chart_dir) as chart:
        return Rendered(chart.render(values, name=name, namespace=namespace))


def validate(obj: dict[str, Any], version: str) -> None:
    """kubernetes-validate --strict for built-in kinds; the vendored subset schema for CRDs."""
    import jsonschema
    import kubernetes_validate.utils as kv

    crd_schema = SCHEMAS / f"{obj['kind'].lower()}-{obj['apiVersion'].split('.')[0]}-{obj['apiVersion'].split('/')[-1]}.json"
    if crd_schema.exists():
        jsonschema.validate(obj, json.loads(crd_schema.read_text()))
        return
    # SchemaNotFoundError propagates: an unknown kind must fail the test, not pass unchecked.
    kv.validate(obj, version, strict=True)


def yamllint_problems(text: str, config: str = YAMLLINT_CONFIG) -> list[str]:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(config)
    return [f"{p.line}:{p.column} {p.rule} {p.message}" for p in linter.run(text, conf)]


@dataclass(frozen=True)
class InvalidCase:
    path: Path
    raises: str
    message: str
    values: dict[str, Any]


def invalid_case(path: Path) -> InvalidCase:
    """Invalid cases say what they expect in a header: `# raises: <Error>` and `# message: <text>`."""
    header = dict(re.findall(r"^# (raises|message): (.*)$", path.read_text(), flags=re.M))
    assert header.keys() == {"raises", "message"}, f"{path.name}: needs '# raises:' and '# message:' lines"
    return InvalidCase(path, header["raises"], header["message"], load_values(path))


def fail_message(error: Exception) -> str:
    """The text a template passed to `fail`, without Helm's 'execution error at (…): ' prefix."""
    return re.sub(r"^execution error at \([^)]*\): ", "", str(error))
