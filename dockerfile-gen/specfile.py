"""Reading an app spec: load → validate → a frozen AppSpec. Every key is checked; unknown keys are
errors. Messages name the file and the dotted key.

The shape is documented in docs/dockerfile-gen.md.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import urllib.parse
from collections.abc import Mapping
from typing import Any

from bootstrap.settings import parsers, table
from dockerfile_gen import appenv, appuser, chartcheck, checks, reloadspec
from dockerfile_gen.deploy import Deploy, check_replicas, parse_deploy, parse_env_overrides
from dockerfile_gen.errors import GenError
from dockerfile_gen.input_files import APP_SPEC, SPEC_LIMITS, read_input
from dockerfile_gen.kinds import JAVA_VERSIONS, KINDS
from dockerfile_gen.spec import AppSpec, Ready

TYPES = ("springboot", "jar", "war", "script")
KEYS = frozenset(
    "name type java java_max artifact start ports config ready packages user env jvm_options labels exit_remap "
    "resources replicas autoscaling ingress env_overrides uid writable reload".split()
)
# Labels the generator owns: an app may not point its image at another base.
RESERVED_LABEL_PREFIX = "org.opencontainers.image.base."


def load_spec(path: str, allow_missing_artifact: bool = False) -> AppSpec:
    """Reads and validates one spec file. The only I/O: the file, its config directory and whether
    its artifact exists (a pipeline that builds it after generating says `allow_missing_artifact`)."""
    data = read_input(path, APP_SPEC, SPEC_LIMITS)
    context = os.path.dirname(path) or "."
    raw_config = data.get("config") if isinstance(data, Mapping) else None
    if raw_config is None:
        listing = _list_files(os.path.join(context, parsers.DEFAULT_CONF_SOURCE))
    else:
        config_dir = checks.rel_path(raw_config, path, "config")
        listing = _list_files(os.path.join(context, config_dir))
        if listing is None:
            raise GenError(f"directory {config_dir!r} does not exist next to the spec", path, "config")
    spec = parse_spec(data, path, context, listing)
    if spec.artifact is not None:
        _check_artifact(spec, allow_missing_artifact)
    return spec


def _check_artifact(spec: AppSpec, allow_missing: bool) -> None:
    assert spec.artifact is not None
    target = os.path.join(spec.context, spec.artifact)
    if os.path.isdir(target) and spec.type in _ARTIFACT_SUFFIX:  # a script's artifact may be a directory
        checks.fail(spec.path, "artifact", f"{spec.artifact!r} is a directory, not a {spec.type} file")
    if not os.path.lexists(target) and not allow_missing:
        checks.fail(spec.path, "artifact", f"{spec.artifact!r} does not exist in the build context {spec.context!r}: "
                    "build it before generating, or pass --allow-missing-artifact when the pipeline builds it afterwards")


def parse_spec(data: Any, path: str, context: str, config_listing: tuple[str, ...] | None) -> AppSpec:
    """Validates a loaded spec. `config_listing` is the files under the config dir, or None when it is absent."""
    doc = checks.mapping(data, path, "")
    checks.known_keys(doc, KEYS, path, "")
    for required in ("name", "type"):
        if required not in doc:
            checks.fail(path, required, "is required")
    name = checks.app_name(doc["name"], path, "name")
    kind = doc["type"]
    if kind not in TYPES:
        checks.fail(path, "type", f"{kind!r} is not one of {' | '.join(TYPES)}")
    java = _java(doc, kind, path)
    artifact = _artifact(doc, kind, path)
    start = _start(doc.get("start"), path) if "start" in doc else None
    if kind == "script" and start is None:
        checks.fail(path, "start", "is required for type script")
    config = checks.rel_path(doc["config"], path, "config") if doc.get("config") is not None else parsers.DEFAULT_CONF_SOURCE
    config_files: tuple[str, ...] = config_listing or ()
    ready = _ready(doc.get("ready"), path) if doc.get("ready") is not None else Ready()
    ports = _ports(doc.get("ports"), path)
    if doc.get("ready") is not None:
        _check_ready_ports(doc["ready"], ports or KINDS[kind].default_ports, path)
    base_env = appenv.parse(doc, path, "")
    labels = _labels(doc.get("labels"), path)
    deploy = parse_deploy(doc, path, "")
    exit_remap = _exit_remap(doc["exit_remap"], path) if "exit_remap" in doc else None
    reload_action, reload_check = reloadspec.parse_reload(doc, path)
    envs = _environments(config, config_files, path)
    overrides = _with_pod_env(parse_env_overrides(doc.get("env_overrides"), envs, path), doc, base_env, path)
    check_replicas(deploy, deploy, path, "")
    for _, raw, override in overrides:
        check_replicas(override, deploy, path, f"env_overrides.{raw}.")
    user, uid = appuser.user_and_uid(doc, path)
    return AppSpec(
        path=path,
        context=context,
        name=name,
        type=kind,
        java=java,
        artifact=artifact,
        start=start,
        ports=ports,
        config=config,
        config_files=config_files,
        envs=envs,
        ready=ready,
        ready_set="ready" in doc,
        packages=_packages(doc.get("packages"), path),
        user=user,
        uid=uid,
        writable=appuser.parse_writable(doc["writable"], path) if doc.get("writable") is not None else (),
        jvm_options=base_env.jvm_options,
        env_vars=base_env.variables,
        labels=labels,
        deploy=deploy,
        exit_remap=exit_remap,
        env_overrides=overrides,
        java_max=_java_max(doc, java, path),
        reload_action=reload_action,
        reload_check=reload_check,
    )


def _with_pod_env(overrides: tuple[tuple[str, str, Deploy], ...], doc: Mapping[str, Any], base: appenv.AppEnv,
                  path: str) -> tuple[tuple[str, str, Deploy], ...]:
    """Each override with the container env its `env` and `jvm_options` add over the image's."""
    out = []
    for env, raw, deploy in overrides:
        entry = appenv.parse(doc["env_overrides"][raw], path, f"env_overrides.{raw}.")
        extra = appenv.pod_env(base, entry)
        if extra:
            deploy = dataclasses.replace(deploy, pod_env=extra, written=deploy.written | {"pod_env"})
        out.append((env, raw, deploy))
    return tuple(out)


_LOOPBACK = ("localhost", "::1", "0.0.0.0", "::")


def _check_ready_ports(value: Mapping[str, Any], ports: tuple[int, ...], path: str) -> None:
    """A tcp or http check on this container (loopback, or a bare port) must name one of its ports:
    a typo there would otherwise show only as a pod that never gets ready, minutes later."""
    parsed = table.parse_ready(value)
    found: list[tuple[str, str, int]] = []
    if parsed.tcp is not None:
        found.append(("tcp", *parsed.tcp))
    if parsed.http is not None:
        url = urllib.parse.urlsplit(parsed.http)
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:  # out of range: the check can never pass, and the agent says why
            port = 0
        found.append(("http", url.hostname or "", port))
    for key, host, port in found:
        local = host in _LOOPBACK or host.startswith("127.")
        if local and port not in ports:
            listed = ", ".join(map(str, ports)) or "none"
            checks.fail(path, f"ready.{key}", f"port {port} is not in ports ({listed}): add it to ports (a port the "
                        "app serves on loopback only is listed too), or check on one of them")


def _environments(config: str, files: tuple[str, ...], path: str) -> tuple[str, ...]:
    """The environment directories under config: the agent refuses to start without conf.d/<APP_ENV>/."""
    envs = sorted({f.split("/", 1)[0] for f in files if "/" in f and f.split("/", 1)[0].lower() != parsers.COMMON_DIR})
    if not envs:
        checks.fail(path, "config", f"{config}/ has no environment directory: add {config}/common/ and one directory "
                    "per environment (dev/, qa/, prod/ …), since the agent links conf.d/<APP_ENV>/ at start and refuses "
                    "to start without it")
    seen: dict[str, str] = {}
    for env in envs:
        canonical = parsers.canonical_env(env)
        if canonical in seen:
            checks.fail(path, "config", f"{config}/{seen[canonical]}/ and {config}/{env}/ name the same environment "
                        "(the agent's aliases), so an override or an aliased APP_ENV could mean either: keep one")
        seen[canonical] = env
    return tuple(envs)


def _exit_remap(value: Any, path: str) -> tuple[tuple[int, int], ...]:
    if value is None or value == "" or value == {}:
        return ()  # explicitly none, also for a JVM type
    return checks.agent_rule(parsers.parse_exit_remap, value, path, "exit_remap")

def _list_files(directory: str) -> tuple[str, ...] | None:
    if not os.path.isdir(directory):
        return None
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        rel = os.path.relpath(root, directory)
        found.extend(f if rel == "." else f"{rel}/{f}" for f in files)
    return tuple(sorted(found))


def _java(doc: Mapping[str, Any], kind: str, path: str) -> int | None:
    if "java" not in doc or doc["java"] is None:
        if kind != "script":
            checks.fail(path, "java", f"is required for type {kind} (one of {', '.join(map(str, JAVA_VERSIONS))})")
        return None
    value = doc["java"]
    if isinstance(value, bool) or value not in JAVA_VERSIONS:
        checks.fail(path, "java", f"{value!r} is not one of {', '.join(map(str, JAVA_VERSIONS))}")
    return int(value)


def _java_max(doc: Mapping[str, Any], java: int | None, path: str) -> int | None:
    """An app runs on its own Java major unless the spec names a newer one it is known to run on."""
    value = doc.get("java_max")
    if value is None:
        return None
    if java is None:
        checks.fail(path, "java_max", "needs `java`, the major the app is built for")
    if isinstance(value, bool) or value not in JAVA_VERSIONS:
        checks.fail(path, "java_max", f"{value!r} is not one of {', '.join(map(str, JAVA_VERSIONS))}")
    if value < java:
        checks.fail(path, "java_max", f"{value} is older than java ({java}): it names the newest major the app may run on")
    return int(value)


_ARTIFACT_SUFFIX = {"springboot": ".jar", "jar": ".jar", "war": ".war"}


def _artifact(doc: Mapping[str, Any], kind: str, path: str) -> str | None:
    if doc.get("artifact") is None:
        if kind in _ARTIFACT_SUFFIX:
            checks.fail(path, "artifact", f"is required for type {kind}")
        return None
    artifact = checks.rel_path(doc["artifact"], path, "artifact")
    suffix = _ARTIFACT_SUFFIX.get(kind)
    if suffix and not artifact.endswith(suffix):
        checks.fail(path, "artifact", f"{artifact!r} must be a {suffix} file for type {kind}")
    return artifact


def _start(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        checks.string(value, path, "start")
        try:
            words = shlex.split(value)
        except ValueError as exc:
            checks.fail(path, "start", f"cannot be split into words: {exc}")
    elif isinstance(value, list):
        words = [checks.shell_word(w, path, f"start[{i}]") for i, w in enumerate(value)]
    else:
        checks.fail(path, "start", f"must be a list (exec form) or a string (got {checks.type_name(value)})")
    if not words:
        checks.fail(path, "start", "must not be empty")
    return tuple(words)


def _ports(value: Any, path: str) -> tuple[int, ...]:
    if value is None:
        return ()
    ports = [checks.port(p, path, f"ports[{i}]") for i, p in enumerate(checks.string_list(value, path, "ports"))]
    if len(set(ports)) != len(ports):
        checks.fail(path, "ports", f"lists a port twice: {ports}")
    for i, port in enumerate(ports):
        for key, probe in chartcheck.probe_ports().items():
            if port == probe:
                checks.fail(path, f"ports[{i}]", f"{port} is the agent's probe port ({key} in the chart); "
                            "give the app another port")
    return tuple(ports)


def _packages(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = checks.string_list(value, path, "packages")
    names = {
        checks.matching(p, checks.PACKAGE, "a Debian package name (^[a-z0-9][a-z0-9+.-]+$)", path, f"packages[{i}]")
        for i, p in enumerate(items)
    }
    return tuple(sorted(names))


def _ready(value: Any, path: str) -> Ready:
    """Checked by the agent's own parse_ready: the keys, the formats and the defaults are its."""
    doc = checks.mapping(value, path, "ready")
    for key, item in doc.items():
        for word in item if isinstance(item, list) else [item]:
            if isinstance(word, str):
                checks.string(word, path, f"ready.{key}")  # control characters would end a Dockerfile line
    parsed = checks.agent_rule(table.parse_ready, doc, path, "ready")
    written = tuple((key, _as_written(key, doc[key], getattr(parsed, key)))
                    for key in table.READY_CHECK_KEYS if getattr(parsed, key) is not None)
    return Ready(checks=written, timeout=parsed.timeout,
                 period=parsed.period if doc.get("period") is not None else None)


def _as_written(key: str, raw: Any, parsed: Any) -> str | int:
    """A check as bootstrap.yaml carries it: tcp as written (a bare port as a number), cmd as one
    shell-quoted string, the others as the agent's parser returns them (stripped text)."""
    if key == "tcp":
        text = str(raw).strip()
        return int(text) if text.isdigit() else text
    if key == "cmd":
        return shlex.join(parsed) if isinstance(raw, list) else str(raw).strip()
    return str(parsed)


def _labels(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    doc = checks.mapping(value, path, "labels")
    out = []
    for key in sorted(doc):
        checks.matching(key, checks.LABEL_KEY, "a label key (lower-case dotted name, optional /suffix)", path, f"labels.{key}")
        if key.startswith(RESERVED_LABEL_PREFIX):
            checks.fail(path, f"labels.{key}", "is set by the generator from the chosen base")
        out.append((key, checks.label_value(doc[key], path, f"labels.{key}")))
    return tuple(out)
