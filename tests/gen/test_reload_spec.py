"""The app spec's `reload:` key: checked with the agent's own parsers, written into bootstrap.yaml
(what the image does on its own) and the chart's values (`reload.action`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from bootstrap.settings import resolve
from dockerfile_gen import reloadspec
from dockerfile_gen.choose import choose
from dockerfile_gen.errors import GenError
from dockerfile_gen.render import bootstrap_settings
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.specfile import parse_spec
from dockerfile_gen.tree import Tree
from dockerfile_gen.values import shared_values

BASE: dict[str, Any] = {"name": "orders", "type": "jar", "java": 17, "artifact": "app.jar"}
CONFIG = ("common/app.properties", "prod/app.properties")


def parse(**changes: Any) -> AppSpec:
    return parse_spec({**BASE, **changes}, "apps/orders/app.yaml", "apps/orders", CONFIG)


@pytest.mark.parametrize(("action", "stored"), [
    ("restart", "restart"), ("signal:HUP", "signal:SIGHUP"), ("exit", "exit"), ("off", "off"), ("rollout", "rollout"),
    ("http:http://127.0.0.1:8080/actuator/refresh", "http:http://127.0.0.1:8080/actuator/refresh"),
])
def test_actions(action: str, stored: str) -> None:
    spec = parse(reload={"action": action, "check": "bin/check-config --strict"})
    assert spec.reload_action == stored and spec.reload_check == ("bin/check-config", "--strict")


def test_no_reload_key_changes_nothing() -> None:
    spec = parse()
    assert (spec.reload_action, spec.reload_check) == (None, None)
    assert reloadspec.bootstrap_settings(None, None) == {} and reloadspec.chart_values(None) == {}


@pytest.mark.parametrize(("value", "key", "words"), [
    ({"action": "reload"}, "reload.action", "use off, restart, exit, signal:NAME"),
    ({"action": "signal:KILL"}, "reload.action", "signal the app can catch"),
    ({"action": "http:ftp://x"}, "reload.action", "http:URL"),
    ({"check": "sh -c 'unclosed"}, "reload.check", "quotes"),
    ({"check": "a\nb"}, "reload.check", "control character"),
    ({"spread": 3}, "reload.spread", "unknown key"),
    ("restart", "reload", "mapping"),
])
def test_bad_values_name_the_key(value: Any, key: str, words: str) -> None:
    with pytest.raises(GenError) as info:
        parse(reload=value)
    message = str(info.value)
    assert message.startswith("apps/orders/app.yaml: ") and key in message and words in message, message
    assert "\n" not in message


def test_written_into_bootstrap_yaml_and_values(write_spec: Callable[..., AppSpec], tree: Tree, tmp_path: Path) -> None:
    spec = write_spec({"name": "orders", "type": "jar", "java": 17, "artifact": "app.jar",
                       "reload": {"action": "restart", "check": ["bin/check-config", "conf.d"]}})
    settings = bootstrap_settings(spec, choose(spec, tree))
    assert settings["reload"] == "restart" and settings["reload_check"] == ["bin/check-config", "conf.d"]
    values = shared_values(spec, settings, (8080,), "registry.local/apps/orders", "1.0.0")
    assert values["reload"] == {"action": "restart"}
    # The agent reads what the generator wrote, as the image's bootstrap.yaml.
    conf = tmp_path / "home" / "conf.d" / "prod"
    conf.mkdir(parents=True)
    loaded = resolve.load({"APP_ENV": "prod", "APP_HOME": str(tmp_path / "home"), "APP_NAME": "orders",
                           **{"BOOTSTRAP_CONFIG": _write_json(tmp_path, {"reload": settings["reload"],
                                                                          "reload_check": settings["reload_check"]})}})
    assert loaded.reload == "restart" and loaded.reload_check == ("bin/check-config", "conf.d")


def test_rollout_stays_in_the_chart() -> None:
    assert reloadspec.bootstrap_settings("rollout", None) == {}
    assert reloadspec.chart_values("rollout") == {"reload": {"action": "rollout"}}


def _write_json(tmp_path: Path, doc: dict[str, Any]) -> str:
    import json

    path = tmp_path / "bootstrap.yaml"
    path.write_text(json.dumps(doc))
    return str(path)
