"""The app's container environment from its spec: `env` (variables) and `jvm_options`, for every
environment, and per environment in `env_overrides.<env>.env` and `.jvm_options`.

Merge rules, additive: an environment's `env` adds to the base's, a variable set in both taking the
environment's value; its `jvm_options` come after the base's, and a base option for the same flag
(`-XX:Name`, `-Dname`, `-Xmx` …) is dropped, so each flag appears once, with the environment's value.

Where it lands: the base in the image (Dockerfile ENV: the variables, and the JVM options as
JAVA_TOOL_OPTIONS, which every JVM reads whatever the start command, and which the agent merges
with its own flags, the user's last so that they win); an environment's in the `env` list of its
values-<env>.yaml, which the chart puts in the container's env, over the image's.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockerfile_gen import checks

JVM_VAR = "JAVA_TOOL_OPTIONS"  # read by every JVM, whatever starts it
# Where a variable the spec may not set comes from, written out in full so each name can be grepped.
_CHART = "set by the chart"
RESERVED = {
    "APP_NAME": "the spec's name",
    "APP_ENV": "the environment (the chart's app.env; -e APP_ENV=… in a direct run)",
    "APP_HOME": f"the image's layout ({_CHART} from agent.appHome)",
    "POD_IP": f"{_CHART} from the downward API",
    "POD_NAME": f"{_CHART} from the downward API",
    "POD_NAMESPACE": f"{_CHART} from the downward API",
    "NODE_NAME": f"{_CHART} from the downward API",
    "BOOTSTRAP_CONFIG": "the generated bootstrap.yaml, which the image carries",
    "BOOTSTRAP_CONF_SOURCE": "the spec's config",
    "BOOTSTRAP_CONF_TARGET": "the image's layout",
    "BOOTSTRAP_LOG_ROOT": f"{_CHART} from logs.mountPath",
    "BOOTSTRAP_LOG_DIR": f"{_CHART} from logs.dirPattern",
    "BOOTSTRAP_RUN_DIR": f"{_CHART} from agent.runDir",
    "BOOTSTRAP_DRAIN_SECONDS": f"{_CHART} from agent.drainSeconds",
    "BOOTSTRAP_STOP_TIMEOUT": f"{_CHART} from agent.stopTimeoutSeconds",
    "BOOTSTRAP_READY_TIMEOUT": "the spec's ready.timeout",
    "BOOTSTRAP_READY_TCP": "the spec's ready.tcp",
    "BOOTSTRAP_READY_HTTP": "the spec's ready.http",
    "BOOTSTRAP_READY_LOG": "the spec's ready.log",
    "BOOTSTRAP_READY_PATTERN": "the spec's ready.pattern",
    "BOOTSTRAP_READY_CMD": "the spec's ready.cmd",
    "BOOTSTRAP_READY_PERIOD": "the spec's ready.period",
    "BOOTSTRAP_EXIT_REMAP": "the spec's exit_remap",
    "BOOTSTRAP_USER": "the spec's user",
    "BOOTSTRAP_IMAGE": f"{_CHART} from image.repository and image.tag",
    "BOOTSTRAP_HTTP_PORT": f"{_CHART} from agent.httpPort",
    "BOOTSTRAP_LIVE_PORT": f"{_CHART} from agent.livePort",
    "BOOTSTRAP_READY_PORT": f"{_CHART} from agent.readyPort",
    "BOOTSTRAP_LIVE_WINDOW": f"{_CHART} from agent.liveWindowSeconds",
}
# JVM options belong in jvm_options: JAVA_OPTS reaches a JVM only through a start command that expands it.
JVM_VARS = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "JAVA_OPTS")
_SIZE_FLAGS = ("-Xmx", "-Xms", "-Xss", "-Xmn")


@dataclass(frozen=True)
class AppEnv:
    """The variables (sorted by name) and JVM options of the base spec or of one environment."""

    variables: tuple[tuple[str, str], ...] = ()
    jvm_options: tuple[str, ...] = ()

    def over(self, base: AppEnv) -> AppEnv:
        """This environment's entry applied to the base (the module's merge rules)."""
        variables = dict(base.variables) | dict(self.variables)
        mine = {option_key(o) for o in self.jvm_options}
        options = tuple(o for o in base.jvm_options if option_key(o) not in mine) + self.jvm_options
        return AppEnv(tuple(sorted(variables.items())), options)


def option_key(option: str) -> str:
    """What a JVM option sets, so that a later one for the same flag replaces it."""
    if option.startswith("-XX:"):
        return "-XX:" + option[4:].lstrip("+-").partition("=")[0]
    if option.startswith("-D"):
        return "-D" + option[2:].partition("=")[0]
    return next((flag for flag in _SIZE_FLAGS if option.startswith(flag)), option)


def parse(doc: Mapping[str, Any], path: str, prefix: str) -> AppEnv:
    """`env` and `jvm_options` of the spec (`prefix` '') or of one env_overrides entry."""
    options = tuple(checks.jvm_option(v, path, f"{prefix}jvm_options[{i}]")
                    for i, v in enumerate(checks.string_list(doc.get("jvm_options", []), path, f"{prefix}jvm_options")))
    if doc.get("env") is None:
        return AppEnv((), options)
    variables = checks.mapping(doc["env"], path, f"{prefix}env")
    return AppEnv(tuple(sorted((_name(name, path, f"{prefix}env.{name}"), _value(value, path, f"{prefix}env.{name}"))
                               for name, value in variables.items())), options)


def _name(name: str, path: str, key: str) -> str:
    if not checks.ENV_NAME.fullmatch(name):
        checks.fail(path, key, "is not a variable name (letters, digits and _, not starting with a digit)")
    if name in JVM_VARS:
        checks.fail(path, key, "JVM options go in jvm_options, which reach the JVM whatever the start command "
                               f"(the generator puts them in {JVM_VAR}, merged with the agent's own flags)")
    if name in RESERVED:
        checks.fail(path, key, f"comes from {RESERVED[name]}: remove it from env")
    return name


def _value(value: Any, path: str, key: str) -> str:
    # A YAML true/yes/on is a bool: the container would get whichever spelling the writer chose.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        checks.fail(path, key, f"must be a string or a number (got {checks.type_name(value)}); quote it: \"true\"")
    text = str(value)
    if checks.CONTROL.search(text):
        checks.fail(path, key, f"must not contain newlines or control characters (got {text!r})")
    return text


def image_env(base: AppEnv) -> list[tuple[str, str]]:
    """The image's ENV: the spec's variables, then its JVM options in JAVA_TOOL_OPTIONS."""
    out = list(base.variables)
    if base.jvm_options:
        out.append((JVM_VAR, " ".join(base.jvm_options)))
    return out


def pod_env(base: AppEnv, override: AppEnv) -> tuple[tuple[str, str], ...]:
    """What an environment's values file sets over the image's env: its own variables, and
    JAVA_TOOL_OPTIONS (the merged options) when it adds JVM options."""
    out = dict(override.variables)
    if override.jvm_options:
        out[JVM_VAR] = " ".join(override.over(base).jvm_options)
    return tuple(sorted(out.items()))
