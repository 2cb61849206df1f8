"""App specs: load → validate → a frozen AppSpec. Every key is checked; unknown keys are errors.

The shape is documented in docs/dockerfile-gen.md. Messages name the file and the dotted key.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bootstrap.settings import parsers, table
from dockerfile_gen import checks
from dockerfile_gen.errors import GenError
from dockerfile_gen.kinds import JAVA_VERSIONS

TYPES = ("springboot", "jar", "war", "script")
KEYS = frozenset(
    "name type java java_max artifact start ports config ready packages user jvm_options labels exit_remap "
    "resources replicas autoscaling ingress env_overrides".split()
)
OVERRIDE_KEYS = frozenset("replicas resources autoscaling ingress".split())
# Labels the generator owns: an app may not point its image at another base.
RESERVED_LABEL_PREFIX = "org.opencontainers.image.base."

try:  # libyaml's loader is several times faster; the pure-Python one gives the same result
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class Ready:
    """`ready:` as written (validated by the agent's parse_ready), for bootstrap.yaml."""

    tcp: str | int | None = None
    http: str | None = None
    log: str | None = None
    pattern: str | None = None
    cmd: str | None = None
    timeout: float = parsers.DEFAULT_READY_TIMEOUT
    period: float | None = None  # None: the agent's default

    @property
    def any_check(self) -> bool:
        return any((self.tcp, self.http, self.log, self.cmd))


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

    def over(self, base: Deploy) -> Deploy:
        """This override applied to `base`: each key it writes replaces the base's."""
        def pick(key: str) -> Any:
            return getattr(self if key in self.written else base, key)
        return Deploy(replicas=pick("replicas"), resources=pick("resources"), autoscaling=pick("autoscaling"),
                      ingress=pick("ingress"), written=base.written | self.written)


@dataclass(frozen=True)
class AppSpec:
    path: str  # the spec file, for messages
    context: str  # the spec's directory: the build context
    name: str
    type: str
    java: int | None
    artifact: str | None
    start: tuple[str, ...] | None
    ports: tuple[int, ...]
    config: str  # relative to context
    config_files: tuple[str, ...]  # files under config, relative to it, sorted
    envs: tuple[str, ...]  # the environment directories under config (not common/), sorted
    ready: Ready
    ready_set: bool  # whether the spec wrote `ready` checks (else the type's default applies)
    packages: tuple[str, ...]
    user: str | None
    jvm_options: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    deploy: Deploy
    exit_remap: tuple[tuple[int, int], ...] | None  # None: the type's default
    env_overrides: tuple[tuple[str, str, Deploy], ...] = field(default=())  # (env dir, spec key, entry)
    java_max: int | None = None  # the newest Java major the app may be placed on; None: exactly `java`

    def deploy_for(self, env: str) -> tuple[Deploy, str, frozenset[str]]:
        """The env's effective Helm settings, its override's spec key prefix ('' if none) and the
        keys that override writes."""
        for env_dir, raw, override in self.env_overrides:
            if env_dir == env:
                return override.over(self.deploy), f"env_overrides.{raw}.", override.written
        return self.deploy, "", frozenset()


def load_spec(path: str, allow_missing_artifact: bool = False) -> AppSpec:
    """Reads and validates one spec file. The only I/O: the file, its config directory and whether
    its artifact exists (a pipeline that builds it after generating says `allow_missing_artifact`)."""
    try:
        with open(path, "rb") as handle:
            data = yaml.load(handle, Loader=_Loader)
    except OSError as exc:
        raise GenError(f"cannot read spec: {exc.strerror}", path) from None
    except yaml.YAMLError as exc:
        raise GenError(f"not valid YAML: {_one_line(exc)}", path) from None
    context = os.path.dirname(path) or "."
    raw_config = data.get("config") if isinstance(data, Mapping) else None
    if raw_config is None:
        listing = _list_files(os.path.join(context, "conf.d"))
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
    config = checks.rel_path(doc["config"], path, "config") if doc.get("config") is not None else "conf.d"
    config_files: tuple[str, ...] = config_listing or ()
    ready = _ready(doc.get("ready"), path) if doc.get("ready") is not None else Ready()
    labels = _labels(doc.get("labels"), path)
    deploy = _deploy(doc, path, "")
    exit_remap = _exit_remap(doc["exit_remap"], path) if "exit_remap" in doc else None
    envs = _environments(config, config_files, path)
    overrides = _env_overrides(doc.get("env_overrides"), envs, path)
    _check_replicas(deploy, deploy, path, "")
    for _, raw, override in overrides:
        _check_replicas(override, deploy, path, f"env_overrides.{raw}.")
    return AppSpec(
        path=path,
        context=context,
        name=name,
        type=kind,
        java=java,
        artifact=artifact,
        start=start,
        ports=_ports(doc.get("ports"), path),
        config=config,
        config_files=config_files,
        envs=envs,
        ready=ready,
        ready_set="ready" in doc,
        packages=_packages(doc.get("packages"), path),
        user=checks.user(doc["user"], path, "user") if doc.get("user") is not None else None,
        jvm_options=tuple(
            checks.jvm_option(v, path, f"jvm_options[{i}]")
            for i, v in enumerate(checks.string_list(doc.get("jvm_options", []), path, "jvm_options"))
        ),
        labels=labels,
        deploy=deploy,
        exit_remap=exit_remap,
        env_overrides=overrides,
        java_max=_java_max(doc, java, path),
    )


def _check_replicas(entry: Deploy, base: Deploy, path: str, prefix: str) -> None:
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


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


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
    tcp = doc.get("tcp")
    return Ready(
        tcp=tcp.strip() if isinstance(tcp, str) else tcp,
        http=parsed.http,
        log=parsed.log,
        pattern=parsed.pattern,
        cmd=shlex.join(parsed.cmd) if isinstance(doc.get("cmd"), list) and parsed.cmd else (
            doc["cmd"].strip() if parsed.cmd else None),
        timeout=parsed.timeout,
        period=parsed.period if doc.get("period") is not None else None,
    )


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


def _deploy(doc: Mapping[str, Any], path: str, prefix: str) -> Deploy:
    """Ranges and quantity formats are the chart's (values.schema.json, checked in chartcheck.py)."""
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


def _env_overrides(value: Any, envs: tuple[str, ...], path: str) -> tuple[tuple[str, str, Deploy], ...]:
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
        checks.known_keys(entry, OVERRIDE_KEYS, path, f"env_overrides.{raw}")
        out.append((env, raw, _deploy(entry, path, f"env_overrides.{raw}.")))
    return tuple(sorted(out))
