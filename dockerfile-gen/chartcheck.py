"""Validates generated Helm values with the chart's own rules: helm/microservice/values.schema.json
(reached through the `chart` symlink, so there is one written copy), applied to what Helm would
validate, the chart's defaults coalesced with values.yaml and one values-<env>.yaml.

The chart's cross-field rules that JSON Schema can express (e.g. "a utilization target needs a
request for its resource") live in the schema's `allOf`, so the generator and Helm refuse the same
values; errors are turned into one line naming the spec key that produced the value.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema
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
_DEPLOY_KEYS = {"replicaCount": "replicas", "resources": "resources", "autoscaling": "autoscaling", "ingress": "ingress"}


@lru_cache(maxsize=1)
def _chart() -> tuple[jsonschema.protocols.Validator, dict[str, Any]]:
    chart = resources.files("dockerfile_gen") / "chart"
    schema = json.loads((chart / "values.schema.json").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema), defaults


def coalesce(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values layers: maps merge key by key, a null removes the key."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check(spec: AppSpec, env: str, prefix: str, written: frozenset[str], layers: list[Mapping[str, Any]]) -> None:
    """Refuses values the chart would refuse. `prefix` is the env's override key prefix and
    `written` the keys that override sets, so the message names the key that produced the value."""
    validator, defaults = _chart()
    values: dict[str, Any] = defaults
    for layer in layers:
        values = coalesce(values, layer)
    error = jsonschema.exceptions.best_match(validator.iter_errors(values))
    if error is None:
        return
    path = tuple(str(p) for p in error.absolute_path)
    detail = error.message
    description = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    if description:
        detail += f" ({description})"
    path_key: tuple[str, ...]
    if error.schema_path and error.schema_path[0] == "allOf":
        rule = validator.schema["allOf"][error.schema_path[1]]
        target = next(iter(rule["if"]["properties"]["autoscaling"]["properties"].keys() - {"enabled"}))
        path_key = ("autoscaling", target)
        detail = f"{detail} at {'.'.join(path)}: {rule['$comment']}"
    else:
        path_key = path
    key = _SPEC_KEYS.get(path_key) or ".".join(path_key)
    top = path_key[0] if path_key else ""
    source = prefix if _DEPLOY_KEYS.get(top) in written else ""
    raise GenError(f"values-{env}.yaml would not pass the chart's values.schema.json: {detail}", spec.path,
                   f"{source}{key}" if top in _DEPLOY_KEYS or path_key in _SPEC_KEYS else f"values.{key}")
