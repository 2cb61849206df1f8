"""Settings: built-in defaults < bootstrap.yaml < environment, resolved into one frozen record
(`bootstrap.record.frozen`: a dataclass without the import cost).

Every value is validated here, once, so later steps can trust it. An error names the
environment variable or YAML key it came from and says what is allowed (exit 78).
PID 1 imports only the standard library: yaml is imported only when a settings file exists.
"""
from __future__ import annotations

import math
import os
import re
import signal
from collections.abc import Mapping

from bootstrap.errors import BootstrapError, UsageError
from bootstrap.record import frozen

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from collections.abc import Callable
    from typing import Any

DEFAULT_CONFIG = "/etc/bootstrap/bootstrap.yaml"
# Patterns, not compiled objects: re compiles (and caches) one on first use, so PID 1 pays only
# for the checks a pod's settings need (bench/run.py, start-up budget).
USER_PATTERN = r"^([a-z_][a-z0-9_-]{0,31}|[0-9]+(:[0-9]+)?)$"
URL_PATTERN = r"^https?://[^/\s?#]+([/?#]\S*)?$"
PLACEHOLDER_PATTERN = r"\{(\w*)\}"
NAME_EDGE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
NAME_INNER = NAME_EDGE | frozenset("._-")
ENV_ALIASES = {"production": "prod", "prd": "prod", "development": "dev"}
LOG_PLACEHOLDERS = ("app", "env", "ip", "pod", "namespace", "node", "hostname")
COMMON_DIR = "common"

# YAML key -> environment variable. YAML keys are the variable names in lower case
# without the BOOTSTRAP_ prefix (DESIGN.md §3, "Settings file").
SCALAR_KEYS = {
    "app_name": "APP_NAME",
    "app_env": "APP_ENV",
    "app_home": "APP_HOME",
    "conf_source": "BOOTSTRAP_CONF_SOURCE",
    "conf_target": "BOOTSTRAP_CONF_TARGET",
    "log_root": "BOOTSTRAP_LOG_ROOT",
    "log_dir": "BOOTSTRAP_LOG_DIR",
    "log_link": "BOOTSTRAP_LOG_LINK",
    "run_dir": "BOOTSTRAP_RUN_DIR",
    "user": "BOOTSTRAP_USER",
    "stop_signal": "BOOTSTRAP_STOP_SIGNAL",
    "drain_seconds": "BOOTSTRAP_DRAIN_SECONDS",
    "stop_timeout": "BOOTSTRAP_STOP_TIMEOUT",
    "exit_remap": "BOOTSTRAP_EXIT_REMAP",
    "thread_dump": "BOOTSTRAP_THREAD_DUMP",
    "http_port": "BOOTSTRAP_HTTP_PORT",
    "image": "BOOTSTRAP_IMAGE",
    "termination_log": "BOOTSTRAP_TERMINATION_LOG",
    "checker_timeout": "BOOTSTRAP_CHECKER_TIMEOUT",
}
READY_KEYS = ("tcp", "http", "log", "pattern", "cmd", "timeout", "period")
LIST_KEYS = ("start", "links", "log_links")
YAML_KEYS = frozenset(SCALAR_KEYS) | {"ready"} | frozenset(LIST_KEYS)


@frozen
class ReadyChecks:
    """The readiness checks; all that are set must pass."""

    tcp: tuple[str, int] | None = None
    http: str | None = None
    log: str | None = None
    pattern: str | None = None
    cmd: tuple[str, ...] | None = None
    timeout: float = 300.0
    period: float = 10.0

    @property
    def any(self) -> bool:
        return bool(self.tcp or self.http or self.log or self.cmd)


@frozen
class Link:
    """An extra config link from `links:`; source is relative to APP_HOME, may use {env} and {app}."""

    source: str
    target: str


@frozen
class LogLink:
    """A path (e.g. /var/log/tomcat10) that becomes a link to LOGDIR/<subdir>."""

    path: str
    subdir: str


@frozen
class Settings:
    app_name: str
    app_env: str  # as given
    env: str  # the matching directory name under conf_source
    app_home: str
    conf_source: str
    conf_target: str
    log_root: str
    log_dir: str  # the pattern, relative to log_root
    log_link: str
    run_dir: str
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    drain_seconds: float = 0.0
    stop_timeout: float = 30.0
    exit_remap: tuple[tuple[int, int], ...] = ()
    thread_dump: bool = False
    http_port: int | None = None
    image: str | None = None
    termination_log: str = "/dev/termination-log"
    checker_timeout: float = 30.0
    start: tuple[str, ...] = ()
    ready: ReadyChecks = ReadyChecks()
    links: tuple[Link, ...] = ()
    log_links: tuple[LogLink, ...] = ()
    pod_ip: str | None = None
    pod: str | None = None
    namespace: str | None = None
    node: str | None = None
    config_file: str | None = None

    def remap(self, code: int) -> int:
        return dict(self.exit_remap).get(code, code)


# --- converters: each takes (value, where) and raises BootstrapError naming `where` ----------


def _fail(where: str, value: Any, allowed: str) -> BootstrapError:
    return BootstrapError(f"{where}={value!r} is invalid: {allowed}")


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail(where, value, "expected a string")
    text = str(value).strip()
    if not text:
        raise _fail(where, value, "must not be empty")
    return text


def parse_app_name(value: Any, where: str) -> str:
    name = _text(value, where)
    # ^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$, checked without a regex: every start pays for it
    if not (len(name) <= 63 and name[0] in NAME_EDGE and name[-1] in NAME_EDGE and set(name) <= NAME_INNER):
        raise _fail(where, value, "use 1-63 of a-z 0-9 . _ -, starting and ending with a letter or digit")
    return name


def parse_seconds(value: Any, where: str) -> float:
    try:
        seconds = float(_text(value, where))
    except ValueError:
        raise _fail(where, value, "expected a number of seconds such as 30 or 2.5") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _fail(where, value, "expected a number of seconds >= 0")
    return seconds


def parse_signal(value: Any, where: str) -> int:
    text = _text(value, where).upper()
    try:
        number = int(text) if text.isdigit() else signal.Signals["SIG" + text.removeprefix("SIG")]
        sig = signal.Signals(number)
    except (KeyError, ValueError):
        raise _fail(where, value, "use a signal name or number such as TERM, SIGTERM, 15, QUIT, INT") from None
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise _fail(where, value, "KILL and STOP cannot be a graceful stop signal; use TERM, INT or QUIT")
    return int(sig)


def parse_exit_remap(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = [tuple(p.split("=", 1)) for p in _text(value, where).split(",") if p.strip()]  # type: ignore[misc]
    result = {}
    for pair in pairs:
        try:
            src, dst = (int(str(x).strip()) for x in pair)
        except ValueError:
            raise _fail(where, value, "use FROM=TO pairs of exit codes 0-255, e.g. 143=0,130=0") from None
        if not (0 <= src <= 255 and 0 <= dst <= 255):
            raise _fail(where, value, "exit codes must be 0-255, e.g. 143=0,130=0")
        result[src] = dst
    return tuple(sorted(result.items()))


def parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value, where).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _fail(where, value, "use 1/0, true/false, yes/no or on/off")


def parse_port(value: Any, where: str) -> int:
    text = _text(value, where)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise _fail(where, value, "expected a port number 1-65535")
    return int(text)


def parse_tcp(value: Any, where: str) -> tuple[str, int]:
    text = _text(value, where)
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]")
    if sep and not host:
        raise _fail(where, value, "use PORT or HOST:PORT, e.g. 8080 or 127.0.0.1:8080")
    try:
        return host, parse_port(port, where)
    except BootstrapError:
        raise _fail(where, value, "use PORT or HOST:PORT with a port 1-65535, e.g. 8080 or 127.0.0.1:8080") from None


def parse_url(value: Any, where: str) -> str:
    text = _text(value, where)
    if not re.match(URL_PATTERN, text):
        raise _fail(where, value, "expected an http:// or https:// URL, e.g. http://127.0.0.1:8080/health")
    return text


def parse_command(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, list):
        if not value or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value):
            raise _fail(where, value, "expected a non-empty list of strings (exec form) or a string")
        return tuple(str(a) for a in value)
    import shlex  # only for the string form

    try:
        argv = tuple(shlex.split(_text(value, where)))
    except ValueError as exc:
        raise _fail(where, value, f"cannot split it like a shell would ({exc}); check the quotes") from None
    return argv


def parse_pattern(value: Any, where: str) -> str:
    text = _text(value, where)
    try:
        re.compile(text)
    except re.error as exc:
        raise _fail(where, value, f"not a valid Python regex ({exc})") from None
    return text


def parse_user(value: Any, where: str) -> str:
    text = _text(value, where)
    if not re.match(USER_PATTERN, text):
        raise _fail(where, value, "use a user name (e.g. app) or uid[:gid] (e.g. 1000:1000)")
    return text


def parse_log_pattern(value: Any, where: str) -> str:
    text = _text(value, where)
    names = set(re.findall(PLACEHOLDER_PATTERN, text))
    rest = re.sub(PLACEHOLDER_PATTERN, "", text)
    if "{" in rest or "}" in rest:
        raise _fail(where, value, "unbalanced or malformed braces; placeholders look like {app}")
    unknown = names - set(LOG_PLACEHOLDERS)
    if unknown:
        raise _fail(where, value, f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: "
                    + " ".join("{%s}" % p for p in LOG_PLACEHOLDERS))
    if text.startswith("/") or ".." in text.split("/") or os.path.normpath(text) == ".":
        raise _fail(where, value, "must be a relative path inside the log root, without '..', e.g. {app}/{ip}")
    return text


def parse_ip(value: Any, where: str) -> str:
    """An IPv4 or IPv6 address, checked without importing socket or ipaddress (PID 1 start-up)."""
    text = _text(value, where)
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        return text
    groups = text.split(":")
    if (2 < len(groups) <= 8 and text.count("::") <= 1 and all(len(g) <= 4 for g in groups)
            and all(c in "0123456789abcdefABCDEF:" for c in text)):
        return text
    raise _fail(where, value, "expected an IPv4 or IPv6 address, e.g. from the downward API (status.podIP)")


def parse_abs_path(value: Any, where: str) -> str:
    text = _text(value, where)
    if not text.startswith("/"):
        raise _fail(where, value, "expected an absolute path")
    return os.path.normpath(text)


SCALAR_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "app_name": parse_app_name,
    "app_env": _text,
    "app_home": parse_abs_path,
    "conf_source": _text,
    "conf_target": _text,
    "log_root": parse_abs_path,
    "log_dir": parse_log_pattern,
    "log_link": _text,
    "run_dir": parse_abs_path,
    "user": parse_user,
    "stop_signal": parse_signal,
    "drain_seconds": parse_seconds,
    "stop_timeout": parse_seconds,
    "exit_remap": parse_exit_remap,
    "thread_dump": parse_bool,
    "http_port": parse_port,
    "image": _text,
    "termination_log": parse_abs_path,
    "checker_timeout": parse_seconds,
}
READY_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "tcp": parse_tcp,
    "http": parse_url,
    "log": _text,
    "pattern": parse_pattern,
    "cmd": parse_command,
    "timeout": parse_seconds,
    "period": parse_seconds,
}


# --- sources -----------------------------------------------------------------------------


def read_yaml(path: str) -> dict[str, Any]:
    """Reads a settings file. Empty is valid; anything but a mapping with known keys is not."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BootstrapError(f"cannot read settings file {path}: {exc.strerror}") from None
    stripped = text.lstrip()
    data = _parse_json(text) if stripped.startswith("{") else None
    if data is None and stripped:
        data = _parse_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BootstrapError(f"settings file {path} must be a YAML mapping of settings, "
                             f"not a {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in YAML_KEYS)
    if unknown:
        raise BootstrapError(f"unknown key '{unknown[0]}' in {path}; allowed: {', '.join(sorted(YAML_KEYS))}")
    ready = data.get("ready")
    if ready is not None:
        if not isinstance(ready, dict):
            raise BootstrapError(f"ready in {path} must be a mapping with keys {', '.join(READY_KEYS)}")
        bad = sorted(str(k) for k in ready if k not in READY_KEYS)
        if bad:
            raise BootstrapError(f"unknown key 'ready.{bad[0]}' in {path}; allowed: {', '.join(READY_KEYS)}")
    return data


def _parse_json(text: str) -> Any:
    """JSON is YAML too, and dockerfile-gen writes bootstrap.yaml as JSON: read that with the
    json module PID 1 has loaded anyway. Importing yaml costs more than the interpreter's own
    start (bench/run.py). Anything that is not plain JSON goes to the YAML parser."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None


def _parse_yaml(text: str, path: str) -> Any:
    import yaml  # lazily: only for a settings file that is not plain JSON

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BootstrapError(f"settings file {path} is not valid YAML{where}; fix the syntax") from None


def _links(items: Any, where: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise BootstrapError(f"{where} must be a list of mappings with keys {keys[0]} and {keys[1]}")
    result = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != set(keys):
            raise BootstrapError(f"{where}[{n}] must be a mapping with exactly the keys {keys[0]} and {keys[1]}")
        result.append({k: _text(item[k], f"{where}[{n}].{k}") for k in keys})
    return result


def _under(home: str, path: str) -> str:
    return os.path.normpath(os.path.join(home, path))


def resolve_env(app_env: str, conf_source: str) -> str:
    """Finds the directory under conf_source for APP_ENV: case-insensitive, with aliases."""
    try:
        dirs = sorted(e.name for e in os.scandir(conf_source) if e.is_dir() and e.name.lower() != COMMON_DIR)
    except FileNotFoundError:
        raise BootstrapError(f"config source {conf_source} does not exist; create it with one directory "
                             "per environment, or set BOOTSTRAP_CONF_SOURCE") from None
    except NotADirectoryError:
        raise BootstrapError(f"config source {conf_source} is not a directory; set BOOTSTRAP_CONF_SOURCE") from None

    def canonical(name: str) -> str:
        return ENV_ALIASES.get(name.lower(), name.lower())

    wanted = app_env.lower()
    for match in ([d for d in dirs if d.lower() == wanted], [d for d in dirs if canonical(d) == canonical(wanted)]):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise BootstrapError(f"APP_ENV={app_env!r} matches several directories in {conf_source} "
                                 f"({', '.join(match)}); rename all but one")
    available = ", ".join(dirs) or "none"
    raise BootstrapError(f"APP_ENV={app_env!r} matches no directory in {conf_source} (available: {available}); "
                         f"set APP_ENV to one of them or add {conf_source}/{app_env.lower()}/")


def load(environ: Mapping[str, str]) -> Settings:
    """Resolves the settings from the defaults, the settings file and `environ`."""
    explicit = environ.get("BOOTSTRAP_CONFIG")
    if explicit and not os.path.isfile(explicit):
        raise BootstrapError(f"BOOTSTRAP_CONFIG={explicit!r} is not a file; fix the path or unset it")
    config_file = explicit or (DEFAULT_CONFIG if os.path.isfile(DEFAULT_CONFIG) else "")
    data = read_yaml(config_file) if config_file else {}

    values: dict[str, Any] = {}
    for key, var in SCALAR_KEYS.items():
        if environ.get(var, "") != "":
            values[key] = SCALAR_PARSERS[key](environ[var], var)
        elif data.get(key) is not None:
            values[key] = SCALAR_PARSERS[key](data[key], f"{key} in {config_file}")
    ready: dict[str, Any] = {}
    for key in READY_KEYS:
        var = f"BOOTSTRAP_READY_{key.upper()}"
        if environ.get(var, "") != "":
            ready[key] = READY_PARSERS[key](environ[var], var)
        elif (data.get("ready") or {}).get(key) is not None:
            ready[key] = READY_PARSERS[key](data["ready"][key], f"ready.{key} in {config_file}")
    if ("log" in ready) != ("pattern" in ready):
        raise BootstrapError("BOOTSTRAP_READY_LOG and BOOTSTRAP_READY_PATTERN must be set together "
                             "(a log file and the regex that marks the app as started)")

    for required in ("app_name", "app_env"):
        if required not in values:
            var = SCALAR_KEYS[required]
            raise BootstrapError(f"{var} is not set; set it in the environment or as {required} in the settings file")

    home = values.get("app_home", "/app")
    conf_source = _under(home, values.get("conf_source", "conf.d"))
    if "log" in ready:
        ready["log"] = _under(home, ready["log"])
    where = f"in {config_file}"
    return Settings(
        app_name=values["app_name"],
        app_env=values["app_env"],
        env=resolve_env(values["app_env"], conf_source),
        app_home=home,
        conf_source=conf_source,
        conf_target=_under(home, values.get("conf_target", "conf")),
        log_root=values.get("log_root", "/data/logs"),
        log_dir=values.get("log_dir", "{app}/{ip}"),
        log_link=_under(home, values.get("log_link", "logs")),
        run_dir=values.get("run_dir", "/run/bootstrap"),
        user=values.get("user"),
        stop_signal=values.get("stop_signal", signal.SIGTERM),
        drain_seconds=values.get("drain_seconds", 0.0),
        stop_timeout=values.get("stop_timeout", 30.0),
        exit_remap=values.get("exit_remap", ()),
        thread_dump=values.get("thread_dump", False),
        http_port=values.get("http_port"),
        image=values.get("image"),
        termination_log=values.get("termination_log", "/dev/termination-log"),
        checker_timeout=values.get("checker_timeout", 30.0),
        start=parse_command(data["start"], f"start {where}") if data.get("start") is not None else (),
        ready=ReadyChecks(**ready),
        links=tuple(Link(**d) for d in _links(data.get("links"), f"links {where}", ("source", "target"))),
        # a relative log_links path is relative to APP_HOME, like BOOTSTRAP_LOG_LINK and links: targets
        log_links=tuple(LogLink(_under(home, d["path"]), d["subdir"])
                        for d in _links(data.get("log_links"), f"log_links {where}", ("path", "subdir"))),
        pod_ip=parse_ip(environ["POD_IP"], "POD_IP") if environ.get("POD_IP") else None,
        pod=environ.get("POD_NAME") or None,
        namespace=environ.get("POD_NAMESPACE") or None,
        node=environ.get("NODE_NAME") or None,
        config_file=config_file or None,
    )


def require_command(settings: Settings, argv: list[str]) -> tuple[str, ...]:
    command = tuple(argv) or settings.start
    if not command:
        raise UsageError("no command to run: give one after 'bootstrap run --' or set start: in bootstrap.yaml")
    return command
