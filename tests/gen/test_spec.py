"""Spec validation: every key, every injection, and messages that name the file and the key."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dockerfile_gen.errors import GenError
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.specfile import parse_spec

BASE: dict[str, Any] = {"name": "orders", "type": "jar", "java": 17, "artifact": "app.jar"}
CONFIG = ("common/app.properties", "dev/app.properties", "prod/app.properties", "qa/app.properties")


def parse(**changes: Any) -> AppSpec:
    doc = {**BASE, **changes}
    return parse_spec({k: v for k, v in doc.items() if v is not None}, "apps/orders/app.yaml", "apps/orders", CONFIG)


def error(**changes: Any) -> GenError:
    with pytest.raises(GenError) as info:
        parse(**changes)
    assert str(info.value).startswith("apps/orders/app.yaml: "), "the message names the file"
    return info.value


def test_minimal_spec() -> None:
    spec = parse()
    assert (spec.name, spec.type, spec.java, spec.artifact, spec.ports, spec.config) == ("orders", "jar", 17, "app.jar", (), "conf.d")
    assert spec.envs == ("dev", "prod", "qa")


def test_unknown_key_names_file_and_key() -> None:
    exc = error(replica=3)
    assert exc.key == "replica" and "unknown key" in str(exc)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"name": "Orders"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": None}, "name"),
        ({"type": "ear"}, "type"),
        ({"java": 16}, "java"),
        ({"java": True}, "java"),
        ({"java": None}, "java"),
        ({"artifact": None}, "artifact"),
        ({"artifact": "/abs/app.jar"}, "artifact"),
        ({"artifact": "../app.jar"}, "artifact"),
        ({"artifact": "app.war"}, "artifact"),
        ({"artifact": "my app.jar"}, "artifact"),
        ({"start": []}, "start"),
        ({"start": "java 'unclosed"}, "start"),
        ({"start": 5}, "start"),
        ({"ports": [0]}, "ports[0]"),
        ({"ports": [8080, 70000]}, "ports[1]"),
        ({"ports": [8080, 8080]}, "ports"),
        ({"ports": "8080"}, "ports"),
        ({"packages": ["Curl"]}, "packages[0]"),
        ({"user": "Root"}, "user"),
        ({"user": "1000:"}, "user"),
        ({"jvm_options": ["Xmx1g"]}, "jvm_options[0]"),
        ({"labels": {"Team": "x"}}, "labels.Team"),
        ({"labels": {"org.opencontainers.image.base.name": "x"}}, "labels.org.opencontainers.image.base.name"),
        ({"labels": {"team": "a\nb"}}, "labels.team"),
        ({"resources": {"request": {}}}, "resources.request"),
        ({"resources": {}}, "resources"),
        ({"replicas": -1}, "replicas"),
        ({"replicas": True}, "replicas"),
        ({"autoscaling": {"min": 3, "max": 2, "cpu": 50}}, "autoscaling.max"),
        ({"autoscaling": {"min": 1, "max": 2}}, "autoscaling"),
        ({"autoscaling": {"min": 1, "max": 2, "cpu": 0}}, "autoscaling.cpu"),
        ({"autoscaling": False}, "autoscaling"),
        ({"replicas": 2, "autoscaling": {"min": 1, "max": 2, "cpu": 50}}, "replicas"),
        ({"exit_remap": "143"}, "exit_remap"),
        ({"exit_remap": "143=256"}, "exit_remap"),
        ({"env_overrides": {"staging": {}}}, "env_overrides.staging"),
        ({"ingress": {"path": "/"}}, "ingress.host"),
        ({"ingress": [{"host": "a.example.com", "path": "api"}]}, "ingress[0].path"),
        ({"ingress": {"host": "a b"}}, "ingress.host"),
        ({"env_overrides": {"qa": {"ports": [1]}}}, "env_overrides.qa.ports"),
        ({"env_overrides": {"prod": {}, "production": {}}}, "env_overrides.production"),
        ({"env_overrides": {"qa": {"replicas": -1}}}, "env_overrides.qa.replicas"),
        ({"ready": {"tcp": "host:port"}}, "ready.tcp"),
        ({"ready": {"http": "ftp://x"}}, "ready.http"),
        ({"ready": {"log": "/app/logs/a.log"}}, "ready.pattern"),
        ({"ready": {"log": "/a", "pattern": "("}}, "ready.pattern"),
        ({"ready": {"timeout": -1}}, "ready.timeout"),
        ({"ready": {"tcpp": 1}}, "ready.tcpp"),
        ({"config": "../conf"}, "config"),
    ],
)
def test_each_rule_names_its_key(changes: dict[str, Any], key: str) -> None:
    assert error(**changes).key == key


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"jvm_options": ["-Dx=1;rm -rf /"]}, "jvm_options[0]"),
        ({"jvm_options": ["-Dx=$(id)"]}, "jvm_options[0]"),
        ({"jvm_options": ["-Dx=`id`"]}, "jvm_options[0]"),
        ({"jvm_options": ["-Dx='a'"]}, "jvm_options[0]"),
        ({"jvm_options": ['-Dx="a"']}, "jvm_options[0]"),
        ({"jvm_options": ["-Dx=a\nRUN id"]}, "jvm_options[0]"),
        ({"jvm_options": ["-Xlog:gc*"]}, "jvm_options[0]"),
        ({"packages": ["curl;id"]}, "packages[0]"),
        ({"packages": ["$(id)"]}, "packages[0]"),
        ({"packages": ["a\nRUN id"]}, "packages[0]"),
        ({"artifact": "app$(id).jar"}, "artifact"),
        ({"artifact": "app.jar\nRUN id"}, "artifact"),
        ({"artifact": "a'b.jar"}, "artifact"),
        ({"user": "app;id"}, "user"),
        ({"user": "$(id)"}, "user"),
        ({"name": "a;b"}, "name"),
        ({"labels": {"team": "x\nRUN id"}}, "labels.team"),
        ({"start": ["java", "-jar", "a\nb"]}, "start[2]"),
        ({"ready": {"cmd": "test\nid"}}, "ready.cmd"),
    ],
)
def test_injection_is_refused(changes: dict[str, Any], key: str) -> None:
    assert error(**changes).key == key


def test_java_not_required_for_scripts() -> None:
    spec = parse(type="script", java=None, artifact=None, start="python3 run.py")
    assert spec.java is None and spec.start == ("python3", "run.py")


def test_script_needs_start() -> None:
    assert error(type="script", java=None).key == "start"


def test_packages_sorted_and_deduplicated() -> None:
    assert parse(packages=["lftp", "curl", "lftp"]).packages == ("curl", "lftp")


def test_env_override_aliases_normalise() -> None:
    spec = parse(env_overrides={"PRODUCTION": {"replicas": 2}, "development": {"replicas": 1}})
    assert [(env, raw) for env, raw, _ in spec.env_overrides] == [("dev", "development"), ("prod", "PRODUCTION")]


def test_ready_values() -> None:
    ready = parse(ports=[8080], ready={"tcp": "127.0.0.1:8080", "cmd": ["test", "-f", "a b"], "timeout": 60, "period": 0}).ready
    assert (ready.check("tcp"), ready.check("cmd"), ready.timeout, ready.period) == ("127.0.0.1:8080", "test -f 'a b'", 60, 0)


def test_quantities_accept_numbers_and_strings() -> None:
    spec = parse(resources={"requests": {"cpu": 1, "memory": "512Mi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}})
    assert spec.deploy.resources == {"requests": {"cpu": 1, "memory": "512Mi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}}


def test_config_dir_defaults_to_conf_d(write_spec: Callable[..., AppSpec]) -> None:
    spec = write_spec(dict(BASE), conf={"common/a.properties": "a=1", "qa/tomcat/server.xml": "<Server/>"})
    assert spec.config == "conf.d" and spec.config_files == ("common/a.properties", "qa/tomcat/server.xml")
    assert spec.envs == ("qa",)


def test_environment_directories_that_alias_each_other_are_refused(write_spec: Callable[..., AppSpec]) -> None:
    with pytest.raises(GenError, match=r"config: conf.d/prod/ and conf.d/production/ name the same environment"):
        write_spec(dict(BASE), conf={"prod/a": "", "production/a": ""})


def test_missing_config_dir_is_an_error(write_spec: Callable[..., AppSpec]) -> None:
    with pytest.raises(GenError, match=r"config: directory 'settings' does not exist"):
        write_spec({**BASE, "config": "settings"})


def test_unreadable_yaml_names_the_file(tmp_path: Any) -> None:
    from dockerfile_gen.specfile import load_spec

    bad = tmp_path / "app.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(GenError, match=r"app.yaml: not valid YAML"):
        load_spec(str(bad))
    with pytest.raises(GenError, match=r"missing.yaml: cannot read: No such file or directory"):
        load_spec(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("java", [8, 11, 17, 21, 25])
def test_every_java_major_the_tree_knows(java: int) -> None:
    assert parse(java=java).java == java and parse(java=java).java_max is None


def test_java_max_names_the_newest_major_allowed() -> None:
    assert parse(java=8, java_max=17).java_max == 17
    assert parse(java=17, java_max=17).java_max == 17
    for changes, message in (
        ({"java": 17, "java_max": 11}, "java_max: 11 is older than java (17)"),
        ({"java": 8, "java_max": 16}, "java_max: 16 is not one of 8, 11, 17, 21, 25"),
        ({"java": 8, "java_max": True}, "java_max: True is not one of"),
        ({"java": 8, "java_max": "17"}, "java_max: '17' is not one of"),
        ({"type": "script", "java": None, "start": "run.sh", "artifact": None, "java_max": 17}, "java_max: needs `java`"),
    ):
        exc = error(**changes)
        assert exc.key == "java_max" and message in str(exc), str(exc)


def test_an_app_port_that_is_a_probe_port_is_refused(write_spec: Callable[..., AppSpec]) -> None:
    """The agent listens on the chart's probe ports (agent.livePort 9931, agent.readyPort 9932)."""
    with pytest.raises(GenError) as info:
        write_spec({**BASE, "ports": [8080, 9931]})
    assert "ports[1]" in str(info.value) and "agent.livePort" in str(info.value) and "\n" not in str(info.value)
