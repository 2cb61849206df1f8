"""The chart against the agent's settings table (bootstrap/settings.py), its one source.

The chart cannot import Python, so it keeps its own spelling of a few rules; these tests make
each one agree with the table: the variables it exports, the names it reserves, the environment
aliases it resolves, and the defaults it passes for the agent's own settings.
"""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from bootstrap.settings import parsers, table
from tests.support.chart import CASES, MICROSERVICE, fail_message, load_values, render

AGENT_VARIABLES = {row.env for row in table.SETTINGS if row.env}
# chart value -> the agent setting it is exported as, where the chart's default is the agent's
SAME_DEFAULT = {"readyTimeoutSeconds": "ready.timeout", "stopTimeoutSeconds": "stop_timeout",
                "runDir": "run_dir"}


def full_values() -> dict[str, Any]:
    """The all-features case with an environment: every variable the chart can export."""
    values = load_values(CASES / "all-features.yaml")
    values.setdefault("app", {})["env"] = "prod"
    return values


def exported(values: dict[str, Any]) -> set[str]:
    """The env names the chart itself sets (the user's `env:` extras left out)."""
    container = render(MICROSERVICE, values).container
    extras = {e["name"] for e in values.get("env") or []}
    return {e["name"] for e in container["env"]} - extras


def test_every_variable_the_chart_exports_is_a_setting() -> None:
    names = exported(full_values())
    assert "APP_ENV" in names and "BOOTSTRAP_READY_TIMEOUT" in names
    unknown = sorted(n for n in names if n not in AGENT_VARIABLES and n.startswith(("APP_", "BOOTSTRAP_", "POD_", "NODE_")))
    assert unknown == [], f"the chart exports variables the agent's settings table does not have: {unknown}"


def test_every_variable_the_chart_exports_is_reserved() -> None:
    """A user's `env:` entry for a name the chart sets would silently win or lose; it is refused."""
    import helm_python as helm

    values = full_values()
    for name in sorted(exported(values) & AGENT_VARIABLES):
        case = {**values, "env": [{"name": name, "value": "x"}]}
        with pytest.raises(helm.HelmError) as error:
            render(MICROSERVICE, case)
        assert f"{name} is set by the chart" in fail_message(error.value), name


@pytest.mark.parametrize("app_env", [*parsers.ENV_ALIASES, "PROD", "Development", "qa"])
def test_env_aliases_are_the_agents(app_env: str) -> None:
    values = {**full_values(), "app": {**full_values()["app"], "env": app_env},
              "configFiles": {"files": {"app.properties": "a=1\n"}}}
    rendered = render(MICROSERVICE, values)
    mounts = [m["mountPath"] for m in rendered.container["volumeMounts"] if m["name"] == "config"]
    assert mounts, "the config files are not mounted"
    # The files are linked over the env dir the agent picks for app.env; the chart names it.
    conf_dir = rendered.one("ConfigMap")["metadata"]["annotations"]["microservice/conf-dir"]
    assert conf_dir.endswith(f"/conf.d/{parsers.canonical_env(app_env)}"), conf_dir


@pytest.mark.parametrize("value, key", SAME_DEFAULT.items())
def test_chart_defaults_for_agent_settings_are_the_agents(value: str, key: str) -> None:
    chart_default = yaml.safe_load((MICROSERVICE / "values.yaml").read_text())["agent"][value]
    assert chart_default == table.setting_row(key).default, \
        f"agent.{value} defaults to {chart_default!r}, the agent's {key} to {table.setting_row(key).default!r}"
