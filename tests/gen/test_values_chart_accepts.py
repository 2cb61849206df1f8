"""The generator writes only what the chart and the agent accept: one values file per environment
directory, whole resources, quantities and autoscaling as the chart's schema takes them, exit-code
remaps, artifacts and ready timeouts. The chart's side is tests/chart/test_resources_env_and_hpa.py;
the end-to-end check is tests/chart/test_seams.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockerfile_gen.cli import main
from dockerfile_gen.errors import EXIT_USER_ERROR
from tests.gen.conftest import IMAGE_TREE

TREE = ["--tree", str(IMAGE_TREE)]
SPEC: dict[str, Any] = {"name": "orders", "type": "springboot", "java": 17, "artifact": "orders.jar"}
ENVS = ("dev", "qa", "prod")


def app_dir(tmp_path: Path, changes: dict[str, Any] | None = None, envs: tuple[str, ...] = ENVS,
            artifact: bool = True) -> Path:
    directory = tmp_path / "orders"
    for env in ("common", *envs):
        (directory / "conf.d" / env).mkdir(parents=True, exist_ok=True)
        (directory / "conf.d" / env / "application.properties").write_text(f"env={env}\n")
    doc = {**SPEC, **(changes or {})}
    (directory / "app.yaml").write_text(yaml.safe_dump({k: v for k, v in doc.items() if v is not None}))
    if artifact:
        (directory / "orders.jar").write_bytes(b"PK\x05\x06" + bytes(18))
    return directory


def generate(directory: Path, *extra: str) -> dict[str, Any]:
    out = directory.parent / "out"
    assert main([*TREE, "-q", "app", str(directory / "app.yaml"), "-o", str(out), *extra]) == 0
    return {p.name: (json.loads(p.read_text()) if p.name == "bootstrap.yaml" else yaml.safe_load(p.read_text()))
            for p in sorted(out.iterdir()) if p.suffix == ".yaml"}


def refused(directory: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    out = directory.parent / "out"
    assert main([*TREE, "-q", "app", str(directory / "app.yaml"), "-o", str(out), *extra]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dockerfile-gen: error: "), err
    assert not out.exists(), "a refused spec writes nothing"
    return err


# --- 1: one complete values file per environment directory, none without app.env ---------------

def test_one_values_file_per_environment_directory(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {"env_overrides": {"prod": {"replicas": 4}}}))
    assert sorted(files) == ["bootstrap.yaml", "values-dev.yaml", "values-prod.yaml", "values-qa.yaml", "values.yaml"]
    assert "env" not in files["values.yaml"]["app"]
    for env in ENVS:
        assert files[f"values-{env}.yaml"]["app"] == {"env": env}
    assert files["values-prod.yaml"]["replicaCount"] == 4


def test_environment_directory_names_are_kept(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {"env_overrides": {"prod": {"replicas": 4}}}, envs=("production", "uat")))
    assert files["values-production.yaml"]["app"] == {"env": "production"}
    assert files["values-production.yaml"]["replicaCount"] == 4  # `prod` is the agent's alias of production
    assert files["values-uat.yaml"]["app"] == {"env": "uat"}


def test_a_spec_without_environment_directories_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(app_dir(tmp_path, envs=()), capsys)
    assert ": config: " in err and "no environment directory" in err


# --- 3: the generator writes the app's resources, whole -----------------------------------------

@pytest.mark.parametrize("resources", [
    {"limits": {"cpu": "2", "memory": "2Gi"}},
    {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
])
def test_resources_are_written_whole_for_every_environment(tmp_path: Path, resources: dict[str, Any]) -> None:
    files = generate(app_dir(tmp_path, {"resources": resources}))
    for env in ENVS:
        assert files[f"values-{env}.yaml"]["resources"] == resources


def test_an_override_replaces_resources_whole(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {
        "resources": {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "env_overrides": {"prod": {"resources": {"limits": {"cpu": "4", "memory": "4Gi"}}}}}))
    assert files["values-prod.yaml"]["resources"] == {"limits": {"cpu": "4", "memory": "4Gi"}}


@pytest.mark.parametrize(("resources", "key"), [
    ({"limits": {"memory": "8GB"}}, "resources.limits.memory"),
    ({"requests": {"cpu": "two"}}, "resources.requests.cpu"),
])
def test_quantities_are_checked_by_the_charts_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     resources: dict[str, Any], key: str) -> None:
    err = refused(app_dir(tmp_path, {"resources": resources}), capsys)
    assert f"app.yaml: {key}: " in err


# --- 4: the generator accepts what the chart accepts, through the chart's own schema ------------

@pytest.mark.parametrize("changes", [
    {"env_overrides": {"prod": {"autoscaling": {"min": 2, "max": 8, "cpu": 70}}}},  # the chart's default requests
    {"resources": {"limits": {"cpu": "2", "memory": "2Gi"}}, "autoscaling": {"min": 2, "max": 4, "cpu": 70, "memory": 80}},
    {"resources": {"requests": {"cpu": "1"}}, "autoscaling": {"min": 2, "max": 4, "cpu": 150}},  # above 100% is valid
])
def test_autoscaling_the_chart_accepts_is_accepted(tmp_path: Path, changes: dict[str, Any]) -> None:
    generate(app_dir(tmp_path, changes))


def test_autoscaling_without_a_request_is_refused_like_the_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(app_dir(tmp_path, {"resources": {"requests": {"memory": "1Gi"}},
                                     "env_overrides": {"prod": {"autoscaling": {"min": 2, "max": 8, "cpu": 70}}}}), capsys)
    assert "env_overrides.prod.autoscaling.cpu: " in err and "cpu request" in err


# --- 5: JVM types remap the JVM's 143 on SIGTERM to 0 -------------------------------------------

@pytest.mark.parametrize(("kind", "artifact"), [("springboot", "orders.jar"), ("jar", "orders.jar"), ("war", "orders.war")])
def test_jvm_types_remap_143_to_0(tmp_path: Path, kind: str, artifact: str) -> None:
    directory = app_dir(tmp_path, {"type": kind, "artifact": artifact})
    (directory / artifact).write_bytes(b"")
    assert generate(directory)["bootstrap.yaml"]["exit_remap"] == "143=0"


def test_script_type_keeps_exit_codes(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {"type": "script", "java": None, "artifact": None, "start": ["sleep", "1"]}))
    assert "exit_remap" not in files["bootstrap.yaml"]


@pytest.mark.parametrize(("value", "written"), [("", None), ({}, None), ("143=0,130=0", "130=0,143=0"), ({1: 0}, "1=0")])
def test_exit_remap_is_overridable(tmp_path: Path, value: Any, written: str | None) -> None:
    settings = generate(app_dir(tmp_path, {"exit_remap": value}))["bootstrap.yaml"]
    assert settings.get("exit_remap") == written


def test_bad_exit_remap_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ": exit_remap: " in refused(app_dir(tmp_path, {"exit_remap": "143=zero"}), capsys)


# --- 6: overrides for an environment that has no config directory -------------------------------

def test_override_for_an_environment_without_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(app_dir(tmp_path, {"env_overrides": {"staging": {"replicas": 2}}}), capsys)
    assert ": env_overrides.staging: " in err and "dev, prod, qa" in err


# --- 7: replicas while autoscaling is on: refused -----------------------------------------------

@pytest.mark.parametrize(("changes", "key"), [
    ({"replicas": 3, "autoscaling": {"min": 2, "max": 4, "cpu": 70}}, "replicas"),
    ({"autoscaling": {"min": 2, "max": 4, "cpu": 70}, "env_overrides": {"qa": {"replicas": 2}}}, "env_overrides.qa.replicas"),
    ({"replicas": 2, "env_overrides": {"prod": {"replicas": 5, "autoscaling": {"min": 4, "max": 9, "cpu": 70}}}},
     "env_overrides.prod.replicas"),
])
def test_replicas_with_autoscaling_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               changes: dict[str, Any], key: str) -> None:
    err = refused(app_dir(tmp_path, changes), capsys)
    assert f": {key}: " in err and "autoscaling" in err


def test_an_override_can_turn_autoscaling_off_for_fixed_replicas(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {"autoscaling": {"min": 2, "max": 4, "cpu": 70},
                                        "env_overrides": {"qa": {"autoscaling": False, "replicas": 1}}}))
    assert files["values-qa.yaml"]["replicaCount"] == 1 and files["values-qa.yaml"].get("autoscaling") == {"enabled": False}
    assert files["values-prod.yaml"]["autoscaling"]["enabled"] is True and "replicaCount" not in files["values-prod.yaml"]


def test_base_replicas_apply_where_an_override_enables_autoscaling(tmp_path: Path) -> None:
    files = generate(app_dir(tmp_path, {"replicas": 2, "env_overrides": {"prod": {"autoscaling": {"min": 4, "max": 9, "cpu": 70}}}}))
    assert files["values-qa.yaml"]["replicaCount"] == 2
    assert "replicaCount" not in files["values-prod.yaml"] and files["values-prod.yaml"]["autoscaling"]["minReplicas"] == 4


# --- 8: a missing artifact is refused unless the pipeline says it builds it later ---------------

def test_missing_artifact_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(app_dir(tmp_path, artifact=False), capsys)
    assert ": artifact: " in err and "--allow-missing-artifact" in err


def test_missing_artifact_allowed_by_the_explicit_flag(tmp_path: Path) -> None:
    generate(app_dir(tmp_path, artifact=False), "--allow-missing-artifact")


def test_artifact_that_is_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = app_dir(tmp_path, artifact=False)
    (directory / "orders.jar").mkdir()
    assert ": artifact: " in refused(directory, capsys, "--allow-missing-artifact")


@pytest.mark.parametrize("timeout", [0, 2.5])
def test_a_ready_timeout_the_chart_cannot_carry_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          timeout: float) -> None:
    """The agent takes any seconds >= 0; the chart exports agent.readyTimeoutSeconds (whole seconds
    >= 1) as BOOTSTRAP_READY_TIMEOUT, which would override bootstrap.yaml: refused, not rounded."""
    err = refused(app_dir(tmp_path, {"ready": {"tcp": 8080, "timeout": timeout}}), capsys)
    assert ": ready.timeout: " in err


def test_the_wheel_carries_the_charts_schema_not_a_copy(tmp_path: Path) -> None:
    """The generator reads helm/microservice/values.schema.json through the `chart` symlink; the
    wheel must carry the file itself, byte for byte."""
    import shutil
    import zipfile

    from dockerfile_gen.build import build_wheel
    from tests.gen.conftest import REPO

    source = tmp_path / "src"  # a copy: building leaves build/ and *.egg-info behind
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("bootstrap", "dockerfile-gen", "helm"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "wheel").mkdir()
    with zipfile.ZipFile(build_wheel(str(source), str(tmp_path / "wheel"))) as wheel:
        for name in ("values.schema.json", "values.yaml"):
            assert wheel.read(f"dockerfile_gen/chart/{name}") == (REPO / "helm" / "microservice" / name).read_bytes()
