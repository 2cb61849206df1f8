"""The seam test: spec → dockerfile-gen → helm/microservice → the agent, end to end.

For every example app and every environment directory of its config, and for hostile specs built
here, the generator's values.yaml + values-<env>.yaml are rendered by the real Helm engine, and the
rendered Deployment (and HPA) must say what the spec and the generated bootstrap.yaml say:

- env: the agent, loading its settings from the rendered container env plus the generated
  bootstrap.yaml, resolves exactly what bootstrap.yaml alone says (the chart never contradicts the
  image), with APP_ENV naming that environment's config directory;
- probes: tcpSocket probes target the agent's live and ready ports as the agent reads them (the
  agent then enforces ready.timeout); exec or httpGet startup probes outlast the ready timeout by
  less than one period; exec probes that read a file read it from the agent's run dir (derived from
  the rendered output, not the commands);
- terminationGracePeriodSeconds covers the agent's drain + stop timeout plus the chart's margin;
- resources: the environment's resources exactly, or the chart's defaults when the spec has none;
- HPA: present exactly when the environment autoscales, with its bounds and only its metrics, each
  metric backed by a request (or a limit Kubernetes copies into one); otherwise the replica count.

The expected side is computed here from the raw spec YAML (each override key replaces the base's
whole), not from the generator's own data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.settings import parsers, resolve, table
from dockerfile_gen.cli import main
from dockerfile_gen.errors import EXIT_USER_ERROR
from tests.support import chart as chartlib
from tests.support.chart import MICROSERVICE, REPO

pytestmark = pytest.mark.chart

EXAMPLES = REPO / "examples" / "apps"
IMAGE_TREE = REPO / "image-tree"
CHART_DEFAULTS = yaml.safe_load((MICROSERVICE / "values.yaml").read_text())
DEPLOY_KEYS = ("replicas", "resources", "autoscaling", "ingress")

# Hostile combinations: (spec, conf.d environment directories).
HOSTILE: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # an override that changes resources and autoscaling together: limits only, memory-only HPA
    "resources-and-hpa-together": ({
        "type": "springboot", "java": 17, "artifact": "app.jar",
        "resources": {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "autoscaling": {"min": 2, "max": 6, "cpu": 70, "memory": 80},
        "env_overrides": {"prod": {"resources": {"limits": {"cpu": "4", "memory": "4Gi"}},
                                   "autoscaling": {"min": 4, "max": 30, "memory": 75}}},
    }, ("dev", "qa", "prod")),
    # a memory-only HPA on the chart's default requests
    "memory-only-hpa": ({
        "type": "jar", "java": 17, "artifact": "app.jar", "ports": [9000],
        "autoscaling": {"min": 1, "max": 3, "memory": 90},
    }, ("qa", "prod")),
    # limits-only resources (Guaranteed QoS) with a CPU HPA over 100 %
    "limits-only": ({
        "type": "war", "java": 17, "artifact": "app.war",
        "resources": {"limits": {"cpu": 1.5, "memory": "2G"}},
        "autoscaling": {"min": 2, "max": 4, "cpu": 150},
    }, ("qa", "prod")),
    # autoscaling with a fixed count where an override turns it off, and base replicas where an
    # override turns it on
    "autoscaling-and-replicas": ({
        "type": "springboot", "java": 11, "java_max": 17, "artifact": "app.jar", "replicas": 2,
        "env_overrides": {"prod": {"autoscaling": {"min": 3, "max": 9, "cpu": 60}},
                          "dev": {"replicas": 1}},
    }, ("dev", "qa", "prod")),
    "autoscaling-off-per-env": ({
        "type": "springboot", "java": 17, "artifact": "app.jar",
        "autoscaling": {"min": 3, "max": 9, "cpu": 60},
        "env_overrides": {"qa": {"autoscaling": False, "replicas": 1}},
    }, ("qa", "prod")),
    # environment aliases on both sides: a `production` directory with a `prod` override, and a
    # `prod` directory with a `PRD` override; an environment without an override
    "alias-directory": ({
        "type": "script", "artifact": "run.sh", "start": "sh /app/run.sh", "ports": [8000],
        "ready": {"http": "http://127.0.0.1:8000/health", "timeout": 45, "period": 3},
        "exit_remap": "1=0",
        "env_overrides": {"prod": {"replicas": 5}},
    }, ("production", "uat")),
    "alias-override": ({
        "type": "springboot", "java": 8, "java_max": 17, "artifact": "app.jar", "replicas": 2,
        "env_overrides": {"PRD": {"replicas": 4, "resources": {"requests": {"cpu": "2", "memory": "3Gi"}}}},
    }, ("dev", "prod")),
}


@dataclass(frozen=True)
class Generated:
    name: str
    spec: dict[str, Any]
    config: Path  # the spec's config directory
    out: Path  # the generator's output


def generate(spec_path: Path, out: Path) -> Generated:
    assert main(["-q", "--tree", str(IMAGE_TREE), "app", str(spec_path), "-o", str(out), "--tag", "1.0.0",
                 "--allow-missing-artifact"]) == 0
    spec = yaml.safe_load(spec_path.read_text())
    return Generated(spec["name"], spec, spec_path.parent / spec.get("config", "conf.d"), out)


def environments(config: Path) -> list[str]:
    return sorted(d.name for d in config.iterdir() if d.is_dir() and d.name.lower() != "common")


def helm_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`helm -f base -f override`: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = helm_merge(out[key], value) if both else value
    return out


def effective(spec: dict[str, Any], env: str) -> dict[str, Any]:
    """The spec's deployment keys for `env`: an override (named like APP_ENV: any case, the agent's
    aliases) replaces a base key whole; `autoscaling: false` turns the base's off."""
    out = {key: spec.get(key) for key in DEPLOY_KEYS}
    for name, override in (spec.get("env_overrides") or {}).items():
        if parsers.canonical_env(name) == parsers.canonical_env(env):
            out.update({key: override[key] for key in DEPLOY_KEYS if key in override})
    if out["autoscaling"] is False:
        out["autoscaling"] = None
    return out


def quantities(resources: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {part: {name: str(value) for name, value in items.items()} for part, items in resources.items()}


def agent_view(environ: dict[str, str], bootstrap_yaml: Path, config: Path) -> table.Settings:
    return resolve.load({**environ, "BOOTSTRAP_CONFIG": str(bootstrap_yaml), "BOOTSTRAP_CONF_SOURCE": str(config)})


def check_environment(app: Generated, env: str, default_resources: dict[str, Any]) -> None:
    base = chartlib.load_values(app.out / "values.yaml")
    layer = chartlib.load_values(app.out / f"values-{env}.yaml")
    rendered = chartlib.render(MICROSERVICE, helm_merge(base, layer), name=app.name)
    boot = json.loads((app.out / "bootstrap.yaml").read_text())
    want = effective(app.spec, env)
    where = f"{app.name}/{env}"
    deployment = rendered.one("Deployment")
    container = rendered.container
    for obj in rendered.objects:
        if obj["kind"] in ("Deployment", "HorizontalPodAutoscaler"):
            chartlib.validate(obj, chartlib.OLDEST_KUBE)

    # env: the agent reads the chart's env over the image's bootstrap.yaml and must end up with
    # exactly what bootstrap.yaml alone says, in the environment's own config directory.
    literal = {name: value for name, value in rendered.env.items() if isinstance(value, str)}
    assert literal["APP_NAME"] == app.name == boot["app_name"], where
    from_chart = agent_view(literal, app.out / "bootstrap.yaml", app.config)
    from_image = agent_view({"APP_ENV": literal["APP_ENV"]}, app.out / "bootstrap.yaml", app.config)
    assert from_chart.env == env, where
    for row in table.SETTING_ROWS:
        if row.key in boot:
            assert getattr(from_chart, row.name) == getattr(from_image, row.name), f"{where}: {row.key} / {row.env}"
    assert from_chart.ready == from_image.ready, where
    bootstrap_vars = {row.env for row in table.SETTINGS if row.env}
    assert set(literal) - bootstrap_vars - {"BOOTSTRAP_IMAGE"} == set(), f"{where}: env the agent does not read"

    # probes: derived from the rendered output, not from today's commands.
    period = container["startupProbe"]["periodSeconds"]
    window = container["startupProbe"]["failureThreshold"] * period
    timeout = boot["ready"]["timeout"]
    ports = {p["name"]: str(p["containerPort"]) for p in container.get("ports", [])}
    if all("tcpSocket" in container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")):
        # The agent's probe ports: startup and liveness on the live port, readiness on the ready
        # port, as the agent reads them; the startup deadline is the agent's (ready.timeout, above).
        assert ports[container["startupProbe"]["tcpSocket"]["port"]] == literal["BOOTSTRAP_LIVE_PORT"], where
        assert ports[container["livenessProbe"]["tcpSocket"]["port"]] == literal["BOOTSTRAP_LIVE_PORT"], where
        assert ports[container["readinessProbe"]["tcpSocket"]["port"]] == literal["BOOTSTRAP_READY_PORT"], where
        assert from_chart.live_port and from_chart.ready_port, where
    else:
        assert timeout <= window < timeout + 2 * period, f"{where}: startup window {window}s vs ready.timeout {timeout}s"
    run_dir = literal["BOOTSTRAP_RUN_DIR"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        assert len({"exec", "httpGet", "tcpSocket"} & set(spec)) == 1, f"{where}: {probe}"
        for word in spec.get("exec", {}).get("command", []):
            if word.startswith("/"):
                assert word.startswith(run_dir + "/"), f"{where}: {probe} reads {word} outside {run_dir}"

    # grace period: the agent's drain + stop, plus the chart's margin (no preStop here).
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace == boot["drain_seconds"] + boot["stop_timeout"] + CHART_DEFAULTS["agent"]["graceMarginSeconds"], where
    assert (literal["BOOTSTRAP_DRAIN_SECONDS"], literal["BOOTSTRAP_STOP_TIMEOUT"]) == (
        str(boot["drain_seconds"]), str(boot["stop_timeout"])), where

    # resources: the environment's whole, or the chart's defaults.
    resources = container["resources"]
    assert quantities(resources) == quantities(want["resources"] or default_resources), where

    # HPA: exactly when the environment autoscales, on exactly its metrics.
    scaling = want["autoscaling"]
    if scaling is None:
        assert not rendered.has("HorizontalPodAutoscaler"), where
        replicas = want["replicas"] if want["replicas"] is not None else CHART_DEFAULTS["replicaCount"]
        assert deployment["spec"]["replicas"] == replicas, where
        return
    hpa = rendered.one("HorizontalPodAutoscaler")["spec"]
    assert "replicas" not in deployment["spec"], f"{where}: the HPA owns the count"
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling["min"], scaling["max"]), where
    metrics = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert metrics == {r: scaling[r] for r in ("cpu", "memory") if scaling.get(r) is not None}, where
    for name in metrics:  # utilization is a percentage of the request (a limit stands in for a missing one)
        assert name in resources.get("requests", {}) or name in resources.get("limits", {}), f"{where}: {name}"


@pytest.fixture(scope="module")
def default_resources() -> dict[str, Any]:
    """What the chart renders when a spec gives no resources (its documented defaults)."""
    values = {"image": {"repository": "r/x", "tag": "1"}, "app": {"env": "qa"}}
    return chartlib.render(MICROSERVICE, values).container["resources"]


EXAMPLE_APPS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "app.yaml").is_file())


@pytest.mark.parametrize("example", EXAMPLE_APPS)
def test_example_app_every_environment(example: str, tmp_path: Path, default_resources: dict[str, Any]) -> None:
    app = generate(EXAMPLES / example / "app.yaml", tmp_path / "out")
    envs = environments(app.config)
    assert sorted(p.name for p in app.out.glob("values-*.yaml")) == sorted(f"values-{e}.yaml" for e in envs)
    for env in envs:
        check_environment(app, env, default_resources)


@pytest.mark.parametrize("example", EXAMPLE_APPS[:1])
def test_generated_values_alone_do_not_render(example: str, tmp_path: Path) -> None:
    """values.yaml without an environment's file has no app.env: the chart refuses it."""
    import helm_python as helm

    app = generate(EXAMPLES / example / "app.yaml", tmp_path / "out")
    with pytest.raises(helm.HelmRenderError, match="app.env is required"):
        chartlib.render(MICROSERVICE, chartlib.load_values(app.out / "values.yaml"), name=app.name)


def write_app(directory: Path, name: str, spec: dict[str, Any], envs: tuple[str, ...]) -> Path:
    for env in ("common", *envs):
        (directory / "conf.d" / env).mkdir(parents=True)
        (directory / "conf.d" / env / "app.properties").write_text(f"env={env}\n")
    (directory / "app.yaml").write_text(yaml.safe_dump({"name": name, **spec}))
    return directory / "app.yaml"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_combinations(case: str, tmp_path: Path, default_resources: dict[str, Any]) -> None:
    spec, envs = HOSTILE[case]
    app = generate(write_app(tmp_path / case, case, spec, envs), tmp_path / "out")
    assert environments(app.config) == sorted(envs)
    for env in envs:
        check_environment(app, env, default_resources)


@pytest.mark.parametrize("spec", [
    {"replicas": 3, "autoscaling": {"min": 2, "max": 4, "cpu": 70}},  # the chart would ignore replicas
    {"autoscaling": {"min": 2, "max": 4, "cpu": 70}, "env_overrides": {"qa": {"replicas": 1}}},
    {"resources": {"requests": {"memory": "1Gi"}}, "autoscaling": {"min": 2, "max": 4, "cpu": 70}},  # no CPU request
    {"resources": {"cpu": "2", "memory": "4Gi"}},  # flat: the API server would drop it
    {"resources": {"limits": {"memory": "8GB"}}},
    {"env_overrides": {"staging": {"replicas": 2}}},  # no conf.d/staging: pods would exit 78
])
def test_hostile_specs_the_chart_or_agent_would_mishandle_are_refused(
        spec: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_app(tmp_path / "app", "refused", {"type": "jar", "java": 17, "artifact": "a.jar", **spec}, ("qa", "prod"))
    code = main(["-q", "--tree", str(IMAGE_TREE), "app", str(path), "-o", str(tmp_path / "out"), "--allow-missing-artifact"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
