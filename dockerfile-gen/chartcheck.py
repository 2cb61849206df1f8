"""Validates generated Helm values with the chart's own rules: helm/microservice/values.schema.json
(reached through the `chart` symlink, so there is one written copy), applied to what Helm would
validate: the chart's defaults coalesced with values.yaml and one values-<env>.yaml.

The chart's cross-field rules that JSON Schema can express ("a utilization target needs a request
for its resource") live in the schema's `allOf`, so the generator and Helm refuse the same values.
Errors become one line naming the spec key that produced the value. The schema is compiled once
into Python (fastjsonschema): a generic validator walking it took most of the generator's time.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import fastjsonschema
import yaml

from dockerfile_gen.errors import GenError
from dockerfile_gen.spec import AppSpec

# values path → spec key, for the keys the generator writes from a spec.
_SPEC_KEYS = {
    ("replicaCount",): "replicas",
    ("autoscaling", "minReplicas"): "autoscaling.min",
    ("autoscaling", "maxReplicas"): "autoscaling.max",
    ("autoscaling", "targetCPUUtilizationPercentage"): "autoscaling.cpu",
    ("autoscaling", "targetMemoryUtilizationPercentage"): "autoscaling.memory",
    ("app", "env"): "config",
    ("agent", "readyTimeoutSeconds"): "ready.timeout",
}
_RULE_KEYS = frozenset(("autoscaling", "resources"))  # what the schema's allOf rules read
_DEPLOY_KEYS = {"replicaCount": "replicas", "resources": "resources", "autoscaling": "autoscaling", "ingress": "ingress"}

Validate = Callable[[Any], Any]


@lru_cache(maxsize=1)
def _chart() -> tuple[dict[str, Any], dict[str, Any]]:
    chart = resources.files("dockerfile_gen") / "chart"
    schema = json.loads((chart / "values.schema.json").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    return schema, defaults


def probe_ports() -> dict[str, int]:
    """The agent's probe ports as the chart sets them by default (agent.livePort, agent.readyPort):
    an app port that is one of them would collide with the agent's listener."""
    agent = _chart()[1].get("agent") or {}
    return {f"agent.{key}": int(agent[key]) for key in ("livePort", "readyPort") if agent.get(key) is not None}


@lru_cache(maxsize=16)
def _validators(keys: frozenset[str]) -> tuple[Validate, tuple[tuple[Validate, Mapping[str, Any]], ...]]:
    """The schema seen through the top-level keys the generator writes (the same rules, without
    walking the dozens of keys it never sets), and each allOf rule compiled alone, so a failure
    names its rule."""
    schema, _ = _chart()
    shared = {"$schema": schema["$schema"], "definitions": schema.get("definitions", {})}
    view = {**shared, "type": "object", "properties": {key: schema["properties"][key] for key in sorted(keys)}}
    rules = tuple((fastjsonschema.compile({**shared, **rule}), rule) for rule in schema.get("allOf", []))
    return fastjsonschema.compile(view), rules


def coalesce(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values layers: maps merge key by key, a null removes the key. Shares the
    layers' leaves (nothing here mutates them)."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = value
    return out


def check(spec: AppSpec, env: str, prefix: str, written: frozenset[str], layers: list[Mapping[str, Any]]) -> None:
    """Refuses values the chart would refuse. `prefix` is the env's override key prefix and
    `written` the keys that override sets, so the message names the key that produced the value."""
    _, defaults = _chart()
    keys = frozenset(key for layer in layers for key in layer) | _RULE_KEYS
    values: dict[str, Any] = {key: defaults[key] for key in keys if key in defaults}
    for layer in layers:
        values = coalesce(values, layer)
    validate, rules = _validators(keys)
    try:
        validate(values)
        for validate_rule, rule in rules:
            try:
                validate_rule(values)
            except fastjsonschema.JsonSchemaValueException as exc:
                where = ".".join(_path(exc)) or "the values"
                reason = f": {rule['$comment']}" if rule.get("$comment") else ""
                raise _error(spec, env, prefix, written, _rule_key(rule) or _path(exc),
                             f"{where} {_detail(exc)}{reason}") from None
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _error(spec, env, prefix, written, _path(exc), _detail(exc)) from None


def _rule_key(rule: Mapping[str, Any]) -> tuple[str, ...]:
    """The values key a cross-field rule is about: the autoscaling target its `if` tests."""
    tested = rule.get("if", {}).get("properties", {}).get("autoscaling", {}).get("properties", {})
    targets = sorted(set(tested) - {"enabled"})
    return ("autoscaling", targets[0]) if targets else ()


def _path(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, ...]:
    return tuple(str(p) for p in exc.path[1:])  # path[0] is "data"


def _detail(exc: fastjsonschema.JsonSchemaValueException) -> str:
    text = exc.message.removeprefix("data").lstrip(".")
    if _path(exc):
        text = text.removeprefix(".".join(_path(exc))).lstrip()
    if exc.rule == "required" and isinstance(exc.rule_definition, list):
        text = f"needs {', '.join(exc.rule_definition)}"
    description = exc.definition.get("description") if isinstance(exc.definition, Mapping) else None
    if exc.rule in ("oneOf", "anyOf") and description:
        text = f"is not valid: {description}"
    if not isinstance(exc.value, (Mapping, list)):
        text = f"{exc.value!r} {text}"
    return text


def _error(spec: AppSpec, env: str, prefix: str, written: frozenset[str], path: tuple[str, ...], detail: str) -> GenError:
    key = _SPEC_KEYS.get(path) or ".".join(path)
    top = path[0] if path else ""
    if top in _DEPLOY_KEYS or path in _SPEC_KEYS:
        source = prefix if _DEPLOY_KEYS.get(top) in written else ""
        key = f"{source}{key}"
    else:
        key = f"values.{key}"
    return GenError(f"values-{env}.yaml would not pass the chart's values.schema.json: {detail}", spec.path, key)
