"""Helm values for helm/microservice: values.yaml, and values-<env>.yaml per env_overrides entry.

Only the chart's own keys are written (its schema refuses others), and only those that apply.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockerfile_gen.spec import AppSpec, Deploy


def _port_name(index: int, port: int) -> str:
    return "http" if index == 0 else f"port-{port}"


def deploy_values(deploy: Deploy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if deploy.replicas is not None:
        out["replicaCount"] = deploy.replicas
    if deploy.resources is not None:
        out["resources"] = {part: dict(deploy.resources[part]) for part in ("requests", "limits") if part in deploy.resources}
    if deploy.autoscaling is not None:
        scaling = deploy.autoscaling
        auto: dict[str, Any] = {"enabled": True, "minReplicas": scaling.min, "maxReplicas": scaling.max}
        if scaling.cpu is not None:
            auto["targetCPUUtilizationPercentage"] = scaling.cpu
        if scaling.memory is not None:
            auto["targetMemoryUtilizationPercentage"] = scaling.memory
        out["autoscaling"] = auto
    if deploy.ingress:
        hosts: dict[str, list[dict[str, str]]] = {}
        for rule in deploy.ingress:  # one host entry per host, paths in the spec's order
            hosts.setdefault(rule.host, []).append({"path": rule.path, "pathType": "Prefix"})
        out["ingress"] = {
            "enabled": True,
            "className": "traefik",
            "hosts": [{"host": host, "paths": paths} for host, paths in hosts.items()],
        }
    return out


def helm_values(spec: AppSpec, settings: Mapping[str, Any], ports: tuple[int, ...], repository: str, tag: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "app": {"name": spec.name},
        "image": {"repository": repository, "tag": tag},
    }
    deploy = deploy_values(spec.deploy)
    if "replicaCount" in deploy:
        values["replicaCount"] = deploy.pop("replicaCount")
    if ports:
        values["ports"] = [{"name": _port_name(i, p), "containerPort": p} for i, p in enumerate(ports)]
    values["agent"] = {
        "readyTimeoutSeconds": settings["ready"]["timeout"],
        "drainSeconds": settings["drain_seconds"],
        "stopTimeoutSeconds": settings["stop_timeout"],
        "user": settings["user"],
    }
    values.update(deploy)
    return values


def env_values(env: str, deploy: Deploy) -> dict[str, Any]:
    values: dict[str, Any] = {"app": {"env": env}}
    values.update(deploy_values(deploy))
    return values
