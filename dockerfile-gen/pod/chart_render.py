"""The chart rendered for one pod on this machine, as `helm upgrade --install RELEASE
helm/microservice -f values.yaml -f values-ENV.yaml --set …` would render it: Helm v4's own engine
(helm-python-sdk, imported only here, so the generator needs it only for `pod`), the generated
values files merged the way Helm merges `-f` files, and local values on top: one replica and no
HPA, the local image (pullPolicy Never: nothing is pulled), and a host directory as the log root.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bootstrap.settings.parsers import canonical_env
from dockerfile_gen.chartcheck import coalesce
from dockerfile_gen.errors import EXIT_UNAVAILABLE, GenError

NAMESPACE = "default"


def values_files(out_dir: Path, env: str) -> tuple[Path, Path]:
    """values.yaml and the environment's values file in a `dockerfile-gen app` output directory;
    the environment is named as APP_ENV names it (any case, the agent's aliases)."""
    shared = out_dir / "values.yaml"
    if not shared.is_file():
        raise GenError(f"{shared} does not exist: write it with dockerfile-gen app SPEC -o {out_dir}", "pod")
    found = sorted(p for p in out_dir.glob("values-*.yaml")
                   if canonical_env(p.name[len("values-"):-len(".yaml")]) == canonical_env(env))
    if len(found) != 1:
        have = ", ".join(sorted(p.name[len("values-"):-len(".yaml")] for p in out_dir.glob("values-*.yaml"))) or "none"
        raise GenError(f"{env!r} names no environment of {out_dir} (have: {have}): pass one of them", "--env")
    return shared, found[0]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise GenError(f"cannot read it: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise GenError("is not a mapping of Helm values", str(path))
    return data


def split_image(image: str) -> dict[str, str]:
    """REPO:TAG or REPO@DIGEST as the chart's image values."""
    repo, at, digest = image.partition("@")
    if at:
        return {"repository": repo, "digest": digest, "tag": digest.rpartition(":")[2][:12] or "local"}
    repo, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:
        raise GenError(f"{image!r} is not REPOSITORY:TAG or REPOSITORY@DIGEST", "--image")
    return {"repository": repo, "tag": tag}


def local_values(out_dir: Path, env: str, image: str | None, log_root: Path) -> dict[str, Any]:
    """The values Helm would see: values.yaml, then the environment's file, then the local ones."""
    shared, per_env = values_files(out_dir, env)
    values = coalesce(_load(shared), _load(per_env))
    local: dict[str, Any] = {
        "image": {**(split_image(image) if image else {}), "pullPolicy": "Never"},
        "replicaCount": 1,
        "autoscaling": {"enabled": False},
        "logs": {"hostPath": str(log_root)},
    }
    return coalesce(values, local)


def image_of(values: Mapping[str, Any]) -> str:
    image = values.get("image", {})
    if image.get("digest"):
        return f"{image.get('repository')}@{image['digest']}"
    return f"{image.get('repository')}:{image.get('tag')}"


def release_name(values: Mapping[str, Any]) -> str:
    """APP-ENV, as a Helm release name must be (lower-case letters, digits and dashes)."""
    name = f"{values.get('app', {}).get('name', 'app')}-{values.get('app', {}).get('env', '')}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", name).strip("-")[:53].strip("-") or "app"


def render(values: dict[str, Any], release: str) -> list[dict[str, Any]]:
    """The chart's objects for these values (helm/microservice, as packaged with the generator)."""
    try:
        import helm_python as helm
    except ImportError:
        raise GenError("rendering the chart needs helm-python-sdk (Helm's engine, no helm binary): "
                       "pip install 'k8s-java-bootstrap[pod]'", "pod").with_exit_code(EXIT_UNAVAILABLE) from None
    with resources.as_file(resources.files("dockerfile_gen") / "chart") as chart_dir:
        try:
            with helm.Chart.load(chart_dir) as chart:
                templates = chart.render(values, name=release, namespace=NAMESPACE)
        except helm.HelmError as exc:  # a chart `fail` or a schema error: one line, Helm's words
            text = re.sub(r"^execution error at \([^)]*\): ", "", str(exc)).strip()
            raise GenError(f"the chart refuses the values: {' '.join(text.split())}", "pod") from None
    objects = []
    for name in sorted(templates):
        if name.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(templates[name]) if isinstance(doc, dict)]
    return objects
