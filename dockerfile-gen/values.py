"""Helm values for helm/microservice: values.yaml, what every environment shares (app.name, image,
ports, agent.*), and one complete values-<env>.yaml per environment directory of the app's config.

The deployment keys (replicaCount, resources, autoscaling, ingress, and the container `env` an
environment adds over the image's: its `env_overrides` env and jvm_options) live only in the env files,
each holding that environment's effective settings whole: Helm merges `-f values.yaml -f
values-<env>.yaml` map by map, so a key split over two files would mix two sources. values.yaml has
no app.env, so the chart refuses to render it alone.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockerfile_gen import reloadspec
from dockerfile_gen.deploy import Deploy
from dockerfile_gen.spec import AppSpec


def _port_name(index: int, port: int) -> str:
    return "http" if index == 0 else f"port-{port}"


def deploy_values(deploy: Deploy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if deploy.replicas is not None and deploy.autoscaling is None:
        out["replicaCount"] = deploy.replicas
    if deploy.resources is not None:
        # Written whole: the chart uses a user's resources instead of its defaults, never merged.
        out["resources"] = {part: dict(deploy.resources[part]) for part in ("requests", "limits") if part in deploy.resources}
    if deploy.autoscaling is not None:
        scaling = deploy.autoscaling
        auto: dict[str, Any] = {"enabled": True, "minReplicas": scaling.min, "maxReplicas": scaling.max}
        if scaling.cpu is not None:
            auto["targetCPUUtilizationPercentage"] = scaling.cpu
        if scaling.memory is not None:
            auto["targetMemoryUtilizationPercentage"] = scaling.memory
        out["autoscaling"] = auto
    elif "autoscaling" in deploy.written:  # an override's `autoscaling: false`
        out["autoscaling"] = {"enabled": False}
    if deploy.ingress:
        hosts: dict[str, list[dict[str, str]]] = {}
        for rule in deploy.ingress:  # one host entry per host, paths in the spec's order
            hosts.setdefault(rule.host, []).append({"path": rule.path, "pathType": "Prefix"})
        out["ingress"] = {
            "enabled": True,
            "className": "traefik",
            "hosts": [{"host": host, "paths": paths} for host, paths in hosts.items()],
        }
    if deploy.pod_env:  # over the image's ENV (the spec's base env and JVM options)
        out["env"] = [{"name": name, "value": value} for name, value in deploy.pod_env]
    return out


def shared_values(spec: AppSpec, settings: Mapping[str, Any], ports: tuple[int, ...], repository: str, tag: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "app": {"name": spec.name},
        "image": {"repository": repository, "tag": tag},
    }
    if ports:
        values["ports"] = [{"name": _port_name(i, p), "containerPort": p} for i, p in enumerate(ports)]
    values["agent"] = {
        "readyTimeoutSeconds": settings["ready"]["timeout"],
        "drainSeconds": settings["drain_seconds"],
        "stopTimeoutSeconds": settings["stop_timeout"],
    }
    values.update(reloadspec.chart_values(spec.reload_action))
    return values


def env_values(env: str, deploy: Deploy) -> dict[str, Any]:
    values: dict[str, Any] = {"app": {"env": env}}
    values.update(deploy_values(deploy))
    return values


def merge_values(values: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """`extra` into `values`, map by map (as Helm merges two values files)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(values.get(key), dict):
            merge_values(values[key], value)
        else:
            values[key] = value
