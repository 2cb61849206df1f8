"""The spec's container environment (`env`, `jvm_options`, both per environment too) and the
readiness port check: what lands in the Dockerfile and the values files, and one line for each
refusal, naming the file and the key."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from dockerfile_gen.appenv import AppEnv, option_key
from dockerfile_gen.errors import GenError
from dockerfile_gen.generate import Options, generate
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.specfile import parse_spec
from dockerfile_gen.tree import Tree

BASE: dict[str, Any] = {"name": "h2", "type": "jar", "java": 17, "artifact": "h2.jar", "ports": [8082, 9092]}
CONFIG = ("common/app.properties", "dev/app.properties", "prod/app.properties")
PATH = "apps/h2/app.yaml"


def parse(**changes: Any) -> AppSpec:
    return parse_spec({**BASE, **changes}, PATH, "apps/h2", CONFIG)


def error(**changes: Any) -> GenError:
    with pytest.raises(GenError) as info:
        parse(**changes)
    text = str(info.value)
    assert text.startswith(f"{PATH}: ") and "\n" not in text, text
    return info.value


def files(tree: Tree, **changes: Any) -> dict[str, str]:
    return dict(generate(parse(**changes), tree, Options(tag="1")).files)


def values(text: str) -> dict[str, Any]:
    return yaml.safe_load(text) or {}


# --- what lands where -------------------------------------------------------------------------

def test_base_env_and_jvm_options_go_into_the_image(real_tree: Tree) -> None:
    out = files(real_tree, env={"B_VAR": "two words $HOME", "A_VAR": 3}, jvm_options=["-Xss512k", "-Dh2.trace=0"])
    dockerfile = out["Dockerfile"]
    assert 'ENV A_VAR="3" \\\n    B_VAR="two words \\$HOME" \\\n    JAVA_TOOL_OPTIONS="-Xss512k -Dh2.trace=0"' in dockerfile
    assert "JAVA_OPTS=" not in dockerfile
    assert all("env" not in values(text) for name, text in out.items() if name.startswith("values"))


def test_jvm_options_reach_the_jvm_whatever_the_start_form(real_tree: Tree) -> None:
    """An exec-form start never expands $JAVA_OPTS; JAVA_TOOL_OPTIONS is read by every JVM."""
    out = files(real_tree, start=["java", "-cp", "/app/h2.jar", "org.h2.tools.Server"], jvm_options=["-Xmx64m"])
    assert 'ENV JAVA_TOOL_OPTIONS="-Xmx64m"' in out["Dockerfile"]


def test_an_environment_adds_to_the_base_in_its_values_file(real_tree: Tree) -> None:
    out = files(real_tree, env={"GREETING": "hello", "KEEP": "1"}, jvm_options=["-Xss512k", "-XX:+UseSerialGC", "-Da=1"],
                env_overrides={"production": {"env": {"GREETING": "hi", "REGION": "eu"},
                                              "jvm_options": ["-XX:-UseSerialGC", "-XX:+UseG1GC", "-Da=2"]}})
    prod = values(out["values-prod.yaml"])
    assert prod["env"] == [
        {"name": "GREETING", "value": "hi"},
        # the base's options first, a flag the environment sets again dropped from them
        {"name": "JAVA_TOOL_OPTIONS", "value": "-Xss512k -XX:-UseSerialGC -XX:+UseG1GC -Da=2"},
        {"name": "REGION", "value": "eu"},
    ]
    assert "env" not in values(out["values-dev.yaml"])  # the image's env as it is


def test_env_only_in_an_override_and_the_values_pass_the_chart_schema(real_tree: Tree) -> None:
    out = files(real_tree, env_overrides={"dev": {"env": {"DEBUG": "true"}}, "prod": {"jvm_options": ["-Xmx1g"], "replicas": 3}})
    assert values(out["values-dev.yaml"])["env"] == [{"name": "DEBUG", "value": "true"}]
    prod = values(out["values-prod.yaml"])
    assert prod["env"] == [{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx1g"}] and prod["replicaCount"] == 3


def test_option_keys_name_the_flag() -> None:
    assert [option_key(o) for o in ("-XX:+UseG1GC", "-XX:-UseG1GC", "-XX:MaxRAM=1g", "-Dx=1", "-Dx", "-Xmx1g", "-Xms2m",
                                    "-verbose:gc")] == \
        ["-XX:UseG1GC", "-XX:UseG1GC", "-XX:MaxRAM", "-Dx", "-Dx", "-Xmx", "-Xms", "-verbose:gc"]
    assert AppEnv((("A", "1"),), ("-Xmx1g",)).over(AppEnv((("A", "0"), ("B", "2")), ("-Xmx2g", "-Xss1m"))) == \
        AppEnv((("A", "1"), ("B", "2")), ("-Xss1m", "-Xmx1g"))


# --- refusals, one line each ----------------------------------------------------------------

@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"env": ["A=1"]}, "env", "must be a mapping"),
    ({"env": {"1A": "x"}}, "env.1A", "is not a variable name"),
    ({"env": {"A-B": "x"}}, "env.A-B", "is not a variable name"),
    ({"env": {"A": True}}, "env.A", "must be a string or a number"),
    ({"env": {"A": None}}, "env.A", "must be a string or a number"),
    ({"env": {"A": ["x"]}}, "env.A", "must be a string or a number"),
    ({"env": {"A": "line\nRUN id"}}, "env.A", "control characters"),
    ({"env": {"JAVA_OPTS": "-Xmx1g"}}, "env.JAVA_OPTS", "go in jvm_options"),
    ({"env": {"JAVA_TOOL_OPTIONS": "-Xmx1g"}}, "env.JAVA_TOOL_OPTIONS", "go in jvm_options"),
    ({"env": {"APP_ENV": "prod"}}, "env.APP_ENV", "comes from the environment"),
    ({"env": {"POD_IP": "1.2.3.4"}}, "env.POD_IP", "the downward API"),
    ({"env": {"BOOTSTRAP_STOP_TIMEOUT": "60"}}, "env.BOOTSTRAP_STOP_TIMEOUT", "agent.stopTimeoutSeconds"),
    ({"env": {"BOOTSTRAP_READY_TCP": "80"}}, "env.BOOTSTRAP_READY_TCP", "ready.tcp"),
    ({"env_overrides": {"prod": {"env": {"APP_NAME": "x"}}}}, "env_overrides.prod.env.APP_NAME", "the spec's name"),
    ({"env_overrides": {"prod": {"jvm_options": ["Xmx1g"]}}}, "env_overrides.prod.jvm_options[0]", "must start with '-'"),
    ({"env_overrides": {"prod": {"jvm_options": ["-Dx=$(id)"]}}}, "env_overrides.prod.jvm_options[0]", "metacharacters"),
    ({"env_overrides": {"prod": {"jvm_options": "-Xmx1g"}}}, "env_overrides.prod.jvm_options", "must be a list"),
    ({"env_overrides": {"prod": {"envs": {}}}}, "env_overrides.prod.envs", "unknown key"),
])
def test_bad_env_is_one_line_naming_the_key(changes: dict[str, Any], key: str, words: str) -> None:
    exc = error(**changes)
    assert exc.key == key and words in exc.detail, str(exc)


def test_the_agents_other_settings_may_be_set_in_env(real_tree: Tree) -> None:
    assert 'BOOTSTRAP_JVM="off"' in files(real_tree, env={"BOOTSTRAP_JVM": "off"})["Dockerfile"]


# --- the readiness port ---------------------------------------------------------------------

@pytest.mark.parametrize(("ready", "key"), [
    ({"tcp": 9029}, "ready.tcp"),
    ({"tcp": "127.0.0.1:9029"}, "ready.tcp"),
    ({"tcp": "localhost:9029"}, "ready.tcp"),
    ({"http": "http://127.0.0.1:9029/health"}, "ready.http"),
    ({"http": "http://localhost/health"}, "ready.http"),  # port 80
])
def test_a_ready_check_on_a_port_not_in_ports_is_refused(ready: dict[str, Any], key: str) -> None:
    exc = error(ready=ready)
    assert exc.key == key and exc.detail.startswith(f"port {9029 if '9029' in str(ready) else 80} is not in ports "
                                                    "(8082, 9092): add it to ports"), str(exc)


@pytest.mark.parametrize("ready", [{"tcp": 9092}, {"http": "http://127.0.0.1:8082/health"}, {"tcp": "db.internal:5432"},
                                   {"http": "https://auth.example.com/health"}, {"cmd": "true"}])
def test_a_ready_check_on_one_of_the_ports_or_elsewhere_passes(ready: dict[str, Any]) -> None:
    assert parse(ready=ready).ready_set


def test_a_types_default_port_counts() -> None:
    spec = parse_spec({"name": "w", "type": "war", "java": 17, "artifact": "w.war", "ready": {"tcp": 8080}},
                      PATH, "apps/h2", CONFIG)
    assert spec.ports == () and spec.ready.check("tcp") == 8080
    with pytest.raises(GenError, match=r"ready.tcp: port 8081 is not in ports \(8080\)"):
        parse_spec({"name": "w", "type": "war", "java": 17, "artifact": "w.war", "ready": {"tcp": 8081}},
                   PATH, "apps/h2", CONFIG)


def test_no_ports_at_all_says_none() -> None:
    with pytest.raises(GenError, match=r"ready.tcp: port 8080 is not in ports \(none\)"):
        parse_spec({"name": "s", "type": "script", "start": ["./run"], "ready": {"tcp": 8080}}, PATH, "apps/h2", CONFIG)
