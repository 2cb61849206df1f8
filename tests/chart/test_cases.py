"""Every values file in cases/ through the real Helm engine: valid ones render, validate strictly
against the Kubernetes schemas, lint clean; invalid ones fail with their exact message."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import chart as chartlib
from tests.support.chart import CASES, MICROSERVICE, NODE_LOGS

pytestmark = pytest.mark.chart

VALID = sorted(CASES.glob("*.yaml"))
INVALID = sorted((CASES / "invalid").glob("*.yaml"))
KUBE = chartlib.kube_versions()


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.fixture(scope="module", params=VALID, ids=ids(VALID))
def case(request: pytest.FixtureRequest) -> tuple[Path, chartlib.Rendered]:
    path: Path = request.param
    return path, chartlib.render(MICROSERVICE, chartlib.load_values(path))


def test_cases_exist() -> None:
    assert {"defaults", "all-features", "generated-orders"} <= {p.stem for p in VALID}
    assert len(INVALID) >= 20


@pytest.mark.parametrize("version", KUBE)
def test_case_validates_strict(case: tuple[Path, chartlib.Rendered], version: str) -> None:
    _, rendered = case
    assert rendered.has("Deployment")
    for obj in rendered.objects:
        chartlib.validate(obj, version)


def test_case_output_is_yamllint_clean(case: tuple[Path, chartlib.Rendered]) -> None:
    _, rendered = case
    assert chartlib.yamllint_problems(rendered.stream) == []


def test_case_file_is_yamllint_clean(case: tuple[Path, chartlib.Rendered]) -> None:
    path, _ = case
    assert chartlib.yamllint_problems(path.read_text(), chartlib.YAMLLINT_VALUES_CONFIG) == []


@pytest.mark.parametrize("version", KUBE)
def test_case_helm_lint_strict(case: tuple[Path, chartlib.Rendered], version: str) -> None:
    import helm_python as helm

    path, _ = case
    report = helm.lint(MICROSERVICE, chartlib.load_values(path), strict=True, kube_version=f"v{version}")
    assert report["errors"] == []
    # Severity 1 is INFO (only "icon is recommended"); warnings and errors fail under --strict.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("path", INVALID, ids=ids(INVALID))
def test_invalid_case_fails_with_its_message(path: Path) -> None:
    import helm_python as helm

    expected = chartlib.invalid_case(path)
    with pytest.raises(helm.HelmError) as caught:
        chartlib.render(MICROSERVICE, expected.values)
    assert type(caught.value).__name__ == expected.raises, str(caught.value)
    if expected.raises == "HelmRenderError":
        # `fail` messages are compared whole: one line naming the value and the fix.
        assert chartlib.fail_message(caught.value) == expected.message
        assert "\n" not in expected.message
    else:
        assert expected.message in str(caught.value)


def test_invalid_case_files_are_yamllint_clean() -> None:
    problems = {p.name: chartlib.yamllint_problems(p.read_text(), chartlib.YAMLLINT_INVALID_CASE_CONFIG) for p in INVALID}
    assert {name: found for name, found in problems.items() if found} == {}


@pytest.mark.parametrize("version", KUBE)
def test_node_logs_chart_validates_and_lints(version: str) -> None:
    import helm_python as helm

    rendered = chartlib.render(NODE_LOGS, {"hostPort": 8081}, name="node-logs", namespace="logging")
    assert rendered.kinds() == ["ConfigMap", "DaemonSet", "Service"]
    for obj in rendered.objects:
        chartlib.validate(obj, version)
    assert chartlib.yamllint_problems(rendered.stream) == []
    report = helm.lint(NODE_LOGS, {}, strict=True, kube_version=f"v{version}")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


def test_chart_values_files_are_yamllint_clean() -> None:
    for chart in (MICROSERVICE, NODE_LOGS):
        assert chartlib.yamllint_problems((chart / "values.yaml").read_text(), chartlib.YAMLLINT_VALUES_CONFIG) == [], chart.name
