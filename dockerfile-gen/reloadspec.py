"""The app spec's `reload:` key: what a config change does, in the image and in the chart.

    reload:
      action: restart            # rollout (the chart's default) | off | restart | exit | signal:NAME | http:URL
      check: bin/check-config    # optional: run before acting; non-zero means no action

`action` goes to the chart's values (`reload.action`) and, unless it is `rollout` (a chart-only
choice: a checksum annotation rolls the Deployment), to bootstrap.yaml as `reload`, so the image
reloads the same way outside Kubernetes. `check` goes to bootstrap.yaml as `reload_check`: it names
a command in the image. Both are checked by the agent's own parsers (docs/contract.md).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bootstrap.settings import parsers
from dockerfile_gen import checks

KEYS = frozenset({"action", "check"})
ROLLOUT = "rollout"


def parse_reload(doc: Mapping[str, Any], path: str) -> tuple[str | None, tuple[str, ...] | None]:
    """(action, check) from the spec's `reload:`, or (None, None) when it has none."""
    if doc.get("reload") is None:
        return None, None
    value = checks.mapping(doc["reload"], path, "reload")
    checks.known_keys(value, KEYS, path, "reload")
    action = None
    if value.get("action") is not None:
        raw = value["action"]
        if isinstance(raw, str) and raw.strip().lower() == ROLLOUT:
            action = ROLLOUT
        else:
            action = checks.agent_rule(parsers.parse_reload, raw, path, "reload.action")
    check = None
    if value.get("check") is not None:
        raw_check = value["check"]
        for n, word in enumerate(raw_check if isinstance(raw_check, list) else [raw_check]):
            if isinstance(word, str):
                checks.string(word, path, f"reload.check[{n}]" if isinstance(raw_check, list) else "reload.check")
        check = checks.agent_rule(parsers.parse_command, raw_check, path, "reload.check")
    return action, check


def bootstrap_settings(action: str | None, check: tuple[str, ...] | None) -> dict[str, Any]:
    """What bootstrap.yaml carries of it."""
    out: dict[str, Any] = {}
    if action is not None and action != ROLLOUT:
        out["reload"] = action
    if check is not None:
        out["reload_check"] = list(check)
    return out


def chart_values(action: str | None) -> dict[str, Any]:
    """What values.yaml carries of it: the chart's `reload.action`."""
    return {"reload": {"action": action}} if action is not None else {}
