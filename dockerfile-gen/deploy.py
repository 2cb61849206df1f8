"""The Helm-only part of an app spec (replicas, resources, autoscaling, ingress) and its
per-environment `env_overrides`: the records and their validation. An override's `env` and
`jvm_options` are appenv's; what they add to the container env travels here as `pod_env`.

Ranges and quantity formats are the chart's (values.schema.json, checked in chartcheck.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.settings import parsers
from dockerfile_gen import checks

OVERRIDE_KEYS = frozenset("replicas resources autoscaling ingress".split())
# An entry's container environment, parsed by appenv; it reaches Deploy as `pod_env`.
RUNTIME_KEYS = frozenset(("env", "jvm_options"))


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int
    cpu: int | None
    memory: int | None


@dataclass(frozen=True)
class Ingress:
    host: str
    path: str


@dataclass(frozen=True)
class Deploy:
    """The Helm-only settings; also the shape of one `env_overrides` entry, where `written` says
    which keys the entry sets (each replaces the base spec's key whole; `autoscaling: false` turns
    the base's autoscaling off)."""

    replicas: int | None = None
    resources: Mapping[str, Mapping[str, str | int | float]] | None = None
    autoscaling: Autoscaling | None = None
    ingress: tuple[Ingress, ...] = ()
    written: frozenset[str] = frozenset()
    # The container env an environment's values file sets over the image's (appenv.pod_env);
    # written as "pod_env" when set.
    pod_env: tuple[tuple[str, str], ...] = ()

    def over(self, base: Deploy) -> Deploy:
        """This override applied to `base`: each key it writes replaces the base's."""
        def pick(key: str) -> Any:
            return getattr(self if key in self.written else base, key)
        return Deploy(replicas=pick("replicas"), resources=pick("resources"), autoscaling=pick("autoscaling"),
                      ingress=pick("ingress"), written=base.written | self.written, pod_env=pick("pod_env"))


def check_replicas(entry: Deploy, base: Deploy, path: str, prefix: str) -> None:
    """The HPA owns the pod count, so a replica count written where autoscaling is on would be
    silently ignored: refuse it rather than guess how it maps to the HPA's bounds."""
    if "replicas" not in entry.written:
        return
    effective = entry.over(base) if prefix else entry
    if effective.autoscaling is None:
        return
    source = f"{prefix}autoscaling" if "autoscaling" in entry.written else "autoscaling (from the base spec)"
    fix = ("remove it, or turn autoscaling off for this environment with autoscaling: false" if prefix
           else "remove it (autoscaling.min and max bound the pod count), or set replicas per environment in env_overrides")
    checks.fail(path, f"{prefix}replicas", f"is ignored while {source} is on: {fix}")


def parse_deploy(doc: Mapping[str, Any], path: str, prefix: str) -> Deploy:
    """The Helm-only keys of the spec (`prefix` '') or of one env_overrides entry."""
    replicas = doc.get("replicas")
    if replicas is not None:
        replicas = checks.integer(replicas, path, f"{prefix}replicas", 0)
    resources = _resources(doc["resources"], path, f"{prefix}resources") if doc.get("resources") is not None else None
    scaling = doc.get("autoscaling")
    if scaling is False and not prefix:
        checks.fail(path, "autoscaling", "false is for env_overrides only (leave autoscaling out instead)")
    autoscaling = _autoscaling(scaling, path, f"{prefix}autoscaling") if scaling not in (None, False) else None
    ingress = _ingress(doc["ingress"], path, f"{prefix}ingress") if doc.get("ingress") is not None else ()
    written = frozenset(k for k in OVERRIDE_KEYS if doc.get(k) is not None)
    return Deploy(replicas=replicas, resources=resources, autoscaling=autoscaling, ingress=ingress, written=written)


def _resources(value: Any, path: str, key: str) -> Mapping[str, Mapping[str, str | int | float]]:
    doc = checks.mapping(value, path, key)
    checks.known_keys(doc, frozenset(("requests", "limits")), path, key)
    out: dict[str, dict[str, str | int | float]] = {}
    for part in ("requests", "limits"):
        if doc.get(part) is None:
            continue
        inner = checks.mapping(doc[part], path, f"{key}.{part}")
        checks.known_keys(inner, frozenset(("cpu", "memory")), path, f"{key}.{part}")
        # The format is the chart's (values.schema.json, checked before writing); a float is
        # written as its text, which is the same quantity.
        out[part] = {res: str(inner[res]) if isinstance(inner[res], float) else inner[res]
                     for res in ("cpu", "memory") if res in inner}
    if not out:
        checks.fail(path, key, "needs requests or limits (leave resources out for the chart's defaults)")
    return out


def _autoscaling(value: Any, path: str, key: str) -> Autoscaling:
    doc = checks.mapping(value, path, key)
    checks.known_keys(doc, frozenset(("min", "max", "cpu", "memory")), path, key)
    for required in ("min", "max"):
        if required not in doc:
            checks.fail(path, f"{key}.{required}", "is required")
    low = checks.integer(doc["min"], path, f"{key}.min", 1)
    high = checks.integer(doc["max"], path, f"{key}.max", 1)
    if high < low:
        checks.fail(path, f"{key}.max", f"{high} is below min ({low})")
    # A utilization target may exceed 100 (usage above the request): the bounds are the chart's.
    cpu = checks.integer(doc["cpu"], path, f"{key}.cpu", 1) if doc.get("cpu") is not None else None
    memory = checks.integer(doc["memory"], path, f"{key}.memory", 1) if doc.get("memory") is not None else None
    if cpu is None and memory is None:
        checks.fail(path, key, "needs a cpu or a memory target percentage")
    return Autoscaling(min=low, max=high, cpu=cpu, memory=memory)


def _ingress(value: Any, path: str, key: str) -> tuple[Ingress, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        doc = checks.mapping(item, path, where)
        checks.known_keys(doc, frozenset(("host", "path")), path, where)
        if "host" not in doc:
            checks.fail(path, f"{where}.host", "is required")
        host = checks.matching(doc["host"], checks.HOSTNAME, "a DNS host name", path, f"{where}.host")
        url_path = checks.matching(doc.get("path", "/"), checks.URL_PATH, "a URL path starting with /", path, f"{where}.path")
        out.append(Ingress(host=host, path=url_path))
    if not out:
        checks.fail(path, key, "must not be an empty list")
    return tuple(out)


def parse_env_overrides(value: Any, envs: tuple[str, ...], path: str) -> tuple[tuple[str, str, Deploy], ...]:
    """Each key names an environment directory the way APP_ENV does (any case, the agent's aliases)."""
    if value is None:
        return ()
    doc = checks.mapping(value, path, "env_overrides")
    by_canonical = {parsers.canonical_env(env): env for env in envs}
    seen: dict[str, str] = {}
    out = []
    for raw in sorted(doc):
        env = by_canonical.get(parsers.canonical_env(raw))
        if env is None:
            checks.fail(path, f"env_overrides.{raw}", f"names no environment directory (have: {', '.join(envs)}): "
                        "pods with this APP_ENV would exit 78 at start; add the directory or fix the name")
        if env in seen:
            checks.fail(path, f"env_overrides.{raw}", f"names the same environment as {seen[env]!r}")
        seen[env] = raw
        entry = checks.mapping(doc[raw], path, f"env_overrides.{raw}")
        checks.known_keys(entry, OVERRIDE_KEYS | RUNTIME_KEYS, path, f"env_overrides.{raw}")
        out.append((env, raw, parse_deploy(entry, path, f"env_overrides.{raw}.")))
    return tuple(sorted(out))
