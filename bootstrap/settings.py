"""Settings: built-in defaults < bootstrap.yaml < environment, resolved into one frozen record
(`bootstrap.record.frozen`: a dataclass without the import cost).

The settings table is the `Settings` and `ReadyChecks` classes below: one `setting(...)` row per
setting, with its environment variable written out in full, its parser, default, allowed values
and a doc line. `load` is driven by it; YAML keys are the field names (`ready.` for the checks).
Every value is validated here, once, so later steps can trust it. An error names the
environment variable or YAML key it came from and says what is allowed (`SettingError`, exit 78).

dockerfile-gen validates the same fields with the same rules; its entry points are listed under
"The rules the generator shares" below.
PID 1 imports only the standard library: yaml is imported only when a settings file exists.
"""
from __future__ import annotations

import math
import os
import re
import signal
from collections.abc import Mapping

from bootstrap.errors import BootstrapError, SettingError, UsageError
from bootstrap.log import DEFAULT_LEVEL, LEVEL_VAR, LEVELS
from bootstrap.record import MISSING, Field, frozen
from bootstrap.status import DEFAULT_RUN_DIR, RUN_DIR_VAR

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
    Parser = Callable[[Any, str], Any]
else:
    def dataclass_transform(**_kwargs):  # noqa: D103 - only the type checker needs the real one
        return lambda decorator: decorator

DEFAULT_CONFIG = "/etc/bootstrap/bootstrap.yaml"
# Patterns, not compiled objects: re compiles (and caches) one on first use, so PID 1 pays only
# for the checks a pod's settings need (bench/run.py, start-up budget).
APP_NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"  # parse_app_name checks it without re
USER_PATTERN = r"^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10}(:[0-9]{1,10})?)$"
URL_PATTERN = r"^https?://[^/\s?#]+([/?#]\S*)?$"
PLACEHOLDER_PATTERN = r"\{(\w*)\}"
NAME_EDGE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
NAME_INNER = NAME_EDGE | frozenset("._-")
# APP_ENV spellings that name the same environment (compared in lower case).
ENV_ALIASES = {"production": "prod", "prd": "prod", "development": "dev"}
LOG_PLACEHOLDERS = ("app", "env", "ip", "pod", "namespace", "node", "hostname")
COMMON_DIR = "common"
DEFAULT_READY_TIMEOUT = 300.0
DEFAULT_READY_PERIOD = 10.0


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


# --- parsers: each takes (value, where) and raises SettingError naming `where` --------------


def _fail(where: str, value: Any, allowed: str) -> SettingError:
    return SettingError(where, allowed, f"{where}={value!r} is invalid: {allowed}")


def parse_text(value: Any, where: str) -> str:
    """A non-empty string (numbers are taken as their text), stripped of surrounding whitespace
    like every value, as manifests and files often carry it. A caller that must refuse control
    characters (dockerfile-gen: they would end a Dockerfile line) checks before."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail(where, value, "expected a string")
    text = str(value).strip()
    if not text:
        raise _fail(where, value, "must not be empty")
    return text


def _verbatim(value: Any, where: str) -> str:
    """Taken as given: names from the downward API, used only in file names that are checked later."""
    return str(value)


def parse_app_name(value: Any, where: str) -> str:
    """An app name: APP_NAME_PATTERN (a Kubernetes label value), after parse_text."""
    name = parse_text(value, where)
    # APP_NAME_PATTERN, checked without a regex: every start pays for it
    if not (len(name) <= 63 and name[0] in NAME_EDGE and name[-1] in NAME_EDGE and set(name) <= NAME_INNER):
        raise _fail(where, value, "use 1-63 of a-z 0-9 . _ -, starting and ending with a letter or digit")
    return name


def parse_seconds(value: Any, where: str) -> float:
    """A finite number of seconds >= 0, from a number or its text."""
    try:
        seconds = float(parse_text(value, where))
    except ValueError:
        raise _fail(where, value, "expected a number of seconds such as 30 or 2.5") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _fail(where, value, "expected a number of seconds >= 0")
    return seconds


def parse_signal(value: Any, where: str) -> int:
    text = parse_text(value, where).upper()
    try:
        number = int(text) if text.isdigit() else signal.Signals["SIG" + text.removeprefix("SIG")]
        sig = signal.Signals(number)
    except (KeyError, ValueError):
        raise _fail(where, value, "use a signal name or number such as TERM, SIGTERM, 15, QUIT, INT") from None
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise _fail(where, value, "KILL and STOP cannot be a graceful stop signal; use TERM, INT or QUIT")
    return int(sig)


def parse_exit_remap(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    """FROM=TO pairs: a mapping, or text such as `143=0,130=0`; sorted by FROM."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = [tuple(p.split("=", 1)) for p in parse_text(value, where).split(",") if p.strip()]  # type: ignore[misc]
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
    text = parse_text(value, where).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _fail(where, value, "use 1/0, true/false, yes/no or on/off")


def parse_jvm_mode(value: Any, where: str) -> str:
    if isinstance(value, bool):  # YAML 1.1 reads a bare `off` as false
        return "auto" if value else "off"
    text = parse_text(value, where).lower()
    if text not in ("auto", "off"):
        raise _fail(where, value, "use auto (JVM flags sized to the container) or off")
    return text


def parse_port(value: Any, where: str) -> int:
    text = parse_text(value, where)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise _fail(where, value, "expected a port number 1-65535")
    return int(text)


def parse_tcp(value: Any, where: str) -> tuple[str, int]:
    """PORT (meaning 127.0.0.1:PORT) or HOST:PORT, [IPv6]:PORT too, as (host, port)."""
    text = parse_text(value, where)
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
    text = parse_text(value, where)
    if not re.match(URL_PATTERN, text):
        raise _fail(where, value, "expected an http:// or https:// URL, e.g. http://127.0.0.1:8080/health")
    return text


def parse_command(value: Any, where: str) -> tuple[str, ...]:
    """An argv: a list (exec form) or a string split like a shell would, without running one."""
    if isinstance(value, list):
        if not value or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value):
            raise _fail(where, value, "expected a non-empty list of strings (exec form) or a string")
        return tuple(str(a) for a in value)
    import shlex  # only for the string form

    try:
        argv = tuple(shlex.split(parse_text(value, where)))
    except ValueError as exc:
        raise _fail(where, value, f"cannot split it like a shell would ({exc}); check the quotes") from None
    return argv


def parse_pattern(value: Any, where: str) -> str:
    text = parse_text(value, where)
    try:
        re.compile(text)
    except re.error as exc:
        raise _fail(where, value, f"not a valid Python regex ({exc})") from None
    return text


def parse_user(value: Any, where: str) -> str:
    """A user name or uid[:gid] (USER_PATTERN), after parse_text; a number is taken as a uid."""
    text = parse_text(value, where)
    if not re.match(USER_PATTERN, text):
        raise _fail(where, value, "use a user name (e.g. app) or uid[:gid] (e.g. 1000:1000)")
    return text


def parse_log_pattern(value: Any, where: str) -> str:
    text = parse_text(value, where)
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
    """An IPv4 or IPv6 address, as strict as the ipaddress module (tests/unit compare the two)
    but without importing it: that would add about 2 ms to every PID 1 start (bench/run.py)."""
    text = parse_text(value, where)
    if not (_is_ipv4(text) or _is_ipv6(text)):
        raise _fail(where, value, "expected an IPv4 or IPv6 address, e.g. from the downward API (status.podIP)")
    return text


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts)


def _is_ipv6(text: str) -> bool:
    if not text.isascii() or ":" not in text:
        return False
    rest, _, last = text.rpartition(":")
    if "." in last:  # an embedded IPv4 address (::ffff:10.0.0.7) takes the last two groups
        if not _is_ipv4(last):
            return False
        text = f"{rest}:0:0"
    if text.count("::") > 1:
        return False
    head, gap, tail = text.partition("::")
    groups = [g for part in (head, tail) if part for g in part.split(":")]
    if not all(1 <= len(g) <= 4 and all(c in "0123456789abcdefABCDEF" for c in g) for g in groups):
        return False  # also an empty group from a lone ':' at either end, or ':::'
    return len(groups) <= 7 if gap else len(groups) == 8


def parse_abs_path(value: Any, where: str) -> str:
    text = parse_text(value, where)
    if not text.startswith("/"):
        raise _fail(where, value, "expected an absolute path")
    return os.path.normpath(text)


def parse_log_level(value: Any, where: str) -> str:
    """A level name; anything else means the default, as it always has (the level only filters
    the agent's own messages, and is applied before the settings are read)."""
    name = str(value).strip().lower()
    return name if name in LEVELS else DEFAULT_LEVEL


def _pairs(items: Any, where: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    if not isinstance(items, list):
        raise SettingError(where, f"must be a list of mappings with keys {keys[0]} and {keys[1]}",
                           f"{where} must be a list of mappings with keys {keys[0]} and {keys[1]}")
    result = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != set(keys):
            raise SettingError(f"{where}[{n}]", f"must be a mapping with exactly the keys {keys[0]} and {keys[1]}",
                               f"{where}[{n}] must be a mapping with exactly the keys {keys[0]} and {keys[1]}")
        result.append({k: parse_text(item[k], f"{where}[{n}].{k}") for k in keys})
    return result


def parse_links(value: Any, where: str) -> tuple[Link, ...]:
    return tuple(Link(**d) for d in _pairs(value, where, ("source", "target")))


def parse_log_links(value: Any, where: str) -> tuple[LogLink, ...]:
    return tuple(LogLink(**d) for d in _pairs(value, where, ("path", "subdir")))


# --- the settings table ----------------------------------------------------------------------


class Setting(Field):
    """One row of the settings table: a field of `Settings` or `ReadyChecks`.

    name: the field; key: the YAML key (`ready.` + name for a check), None when only the
    environment sets it; env: the environment variable, None when only the file sets it;
    parse(value, where): validates and converts, raising SettingError naming `where`;
    default: MISSING for a required setting; allowed: the accepted values, for people;
    doc: one line; home_relative: a relative value is relative to APP_HOME.
    """

    __slots__ = ("env", "parse", "default", "allowed", "doc", "yaml", "home_relative", "name", "key")

    def __init__(self, env: str | None, parse: Parser, default: Any, allowed: str, doc: str,
                 yaml: bool, home_relative: bool) -> None:
        self.env = env
        self.parse = parse
        self.default = default
        self.allowed = allowed
        self.doc = doc
        self.yaml = yaml
        self.home_relative = home_relative
        self.name = ""
        self.key: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        section = owner.__dict__.get("SECTION")
        if self.yaml:
            self.key = f"{section}.{name}" if section else name

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def where_in(self, config_file: str) -> str:
        """How an error names this setting's value in a settings file."""
        return f"{self.key} in {config_file}"

    def __repr__(self) -> str:
        return f"Setting({self.key or self.name!r}, env={self.env!r}, default={self.default!r})"


def setting(env: str | None, parse: Parser, allowed: str, doc: str, *, default: Any = MISSING,
            yaml: bool = True, home_relative: bool = False) -> Any:
    """Declares one setting as a field of a `@table` class: `env` is its environment variable
    (None: the settings file only), `yaml=False` keeps it out of the settings file, a setting
    without `default` is required. See `Setting` for the columns."""
    return Setting(env, parse, default, allowed, doc, yaml, home_relative)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(setting,))
def table(cls: type[T]) -> type[T]:
    """A frozen record whose `setting(...)` fields are rows of the settings table."""
    return frozen(cls)


def rows(cls: type) -> tuple[Setting, ...]:
    """The rows a `@table` class declares, in order."""
    return tuple(v for v in vars(cls).values() if isinstance(v, Setting))


@table
class ReadyChecks:
    """The readiness checks; all that are set must pass."""

    SECTION = "ready"

    tcp: tuple[str, int] | None = setting(
        "BOOTSTRAP_READY_TCP", parse_tcp, "PORT (= 127.0.0.1:PORT) or HOST:PORT",
        "A TCP connect to it succeeds.", default=None)
    http: str | None = setting(
        "BOOTSTRAP_READY_HTTP", parse_url, "an http:// or https:// URL",
        "A GET answers 2xx or 3xx.", default=None)
    log: str | None = setting(
        "BOOTSTRAP_READY_LOG", parse_text, "a path, relative to APP_HOME or absolute; with pattern",
        "A log file in which `pattern` must appear after the start.", default=None, home_relative=True)
    pattern: str | None = setting(
        "BOOTSTRAP_READY_PATTERN", parse_pattern, "a Python regex; with log",
        "The line in `log` that marks the app as started.", default=None)
    cmd: tuple[str, ...] | None = setting(
        "BOOTSTRAP_READY_CMD", parse_command, "a command: a string split like a shell would, or a list",
        "Run without a shell; exit 0 counts.", default=None)
    timeout: float = setting(
        "BOOTSTRAP_READY_TIMEOUT", parse_seconds, "seconds >= 0",
        "Startup deadline; past it the state is `failed`.", default=DEFAULT_READY_TIMEOUT)
    period: float = setting(
        "BOOTSTRAP_READY_PERIOD", parse_seconds, "seconds >= 0; 0 checks only at startup",
        "Re-check interval once ready.", default=DEFAULT_READY_PERIOD)

    @property
    def any(self) -> bool:
        return bool(self.tcp or self.http or self.log or self.cmd)


@table
class Settings:
    """The resolved settings. Every field but `env` and `ready` is a row of the settings table."""

    app_name: str = setting(
        "APP_NAME", parse_app_name, APP_NAME_PATTERN,
        "The app's name: the log directory, the records, the metrics.")
    app_env: str = setting(
        "APP_ENV", parse_text, "a directory under the config source, case-insensitive, or an alias in ENV_ALIASES",
        "The environment whose config files are linked (as given; `env` is the directory it matched).")
    env: str  # the matching directory name under conf_source
    app_home: str = setting(
        "APP_HOME", parse_abs_path, "an absolute path",
        "The app's home; relative paths of other settings are relative to it.", default="/app")
    conf_source: str = setting(
        "BOOTSTRAP_CONF_SOURCE", parse_text, "a path",
        "Holds an optional common/ and one directory per environment.", default="conf.d", home_relative=True)
    conf_target: str = setting(
        "BOOTSTRAP_CONF_TARGET", parse_text, "a path",
        "Where the app reads its config.", default="conf", home_relative=True)
    log_root: str = setting(
        "BOOTSTRAP_LOG_ROOT", parse_abs_path, "an absolute path",
        "The hostPath mount the log directory is made in; must exist and be writable.", default="/data/logs")
    log_dir: str = setting(
        "BOOTSTRAP_LOG_DIR", parse_log_pattern,
        "a relative path without '..'; placeholders " + " ".join("{%s}" % p for p in LOG_PLACEHOLDERS),
        "The container's log directory, relative to the log root.", default="{app}/{ip}")
    log_link: str = setting(
        "BOOTSTRAP_LOG_LINK", parse_text, "a path",
        "Becomes a symlink to the log directory.", default="logs", home_relative=True)
    run_dir: str = setting(
        RUN_DIR_VAR, parse_abs_path, "an absolute path",
        "Holds status.json and the ready marker the probes read.", default=DEFAULT_RUN_DIR)
    user: str | None = setting(
        "BOOTSTRAP_USER", parse_user, "a user name or uid[:gid]",
        "The app runs as this user; setup runs as root.", default=None)
    stop_signal: int = setting(
        "BOOTSTRAP_STOP_SIGNAL", parse_signal, "a signal name or number but KILL and STOP, e.g. TERM, SIGTERM, 15",
        "Sent to the app's process group to stop it.", default=int(signal.SIGTERM))
    drain_seconds: float = setting(
        "BOOTSTRAP_DRAIN_SECONDS", parse_seconds, "seconds >= 0",
        "Wait between going not-ready and sending the stop signal.", default=0.0)
    stop_timeout: float = setting(
        "BOOTSTRAP_STOP_TIMEOUT", parse_seconds, "seconds >= 0",
        "Grace period between the stop signal and SIGKILL.", default=30.0)
    exit_remap: tuple[tuple[int, int], ...] = setting(
        "BOOTSTRAP_EXIT_REMAP", parse_exit_remap, "FROM=TO pairs of exit codes 0-255, e.g. 143=0,130=0",
        "Rewrites the app's exit codes.", default=())
    thread_dump: bool = setting(
        "BOOTSTRAP_THREAD_DUMP", parse_bool, "1/0, true/false, yes/no, on/off",
        "SIGQUIT one second before the SIGKILL, for a JVM thread dump.", default=False)
    http_port: int | None = setting(
        "BOOTSTRAP_HTTP_PORT", parse_port, "a port 1-65535",
        "Serves the probes, /status and /metrics from a helper process; off when unset.", default=None)
    live_port: int | None = setting(
        "BOOTSTRAP_LIVE_PORT", parse_port, "a port 1-65535",
        "Listens from the app's start while the app is live: the startup and liveness tcpSocket probes; "
        "off when unset.", default=None)
    ready_port: int | None = setting(
        "BOOTSTRAP_READY_PORT", parse_port, "a port 1-65535",
        "Listens exactly while RUN_DIR/ready exists: the readiness tcpSocket probe; off when unset.", default=None)
    live_window: float = setting(
        "BOOTSTRAP_LIVE_WINDOW", parse_seconds, "seconds >= 0",
        "Seconds the state may stay not_ready before the live port closes; 0: never.", default=300.0)
    image: str | None = setting(
        "BOOTSTRAP_IMAGE", parse_text, "an image reference",
        "Copied into the .bootstrap.jsonl records.", default=None)
    termination_log: str = setting(
        "BOOTSTRAP_TERMINATION_LOG", parse_abs_path, "an absolute path",
        "Where the exit cause is written, when the file exists and is writable.", default="/dev/termination-log")
    checker_timeout: float = setting(
        "BOOTSTRAP_CHECKER_TIMEOUT", parse_seconds, "seconds >= 0",
        "A readiness checker silent this long is killed and restarted.", default=30.0)
    jvm: str = setting(
        "BOOTSTRAP_JVM", parse_jvm_mode, "auto or off",
        "auto: JVM flags sized to the cgroup's memory limit, and OutOfMemoryError forensics, in the app's "
        "JAVA_TOOL_OPTIONS (docs/jvm.md); a flag the user set wins.", default="auto")
    start: tuple[str, ...] = setting(
        None, parse_command, "a list (exec form) or a string split like a shell would",
        "The app's command when none follows `bootstrap run --`.", default=())
    ready: ReadyChecks = ReadyChecks()  # the rows of ReadyChecks
    links: tuple[Link, ...] = setting(
        None, parse_links, "a list of {source, target}",
        "Extra config links; source relative to APP_HOME with {env} and {app}.", default=())
    log_links: tuple[LogLink, ...] = setting(
        None, parse_log_links, "a list of {path, subdir}",
        "Each path becomes a link to LOGDIR/subdir; relative paths are under APP_HOME.", default=())
    pod_ip: str | None = setting(
        "POD_IP", parse_ip, "an IPv4 or IPv6 address",
        "The container's IP ({ip}); else the default-route interface's.", default=None, yaml=False)
    pod: str | None = setting(
        "POD_NAME", _verbatim, "the downward API's metadata.name",
        "{pod} in the log directory pattern.", default=None, yaml=False)
    namespace: str | None = setting(
        "POD_NAMESPACE", _verbatim, "the downward API's metadata.namespace",
        "{namespace} in the log directory pattern.", default=None, yaml=False)
    node: str | None = setting(
        "NODE_NAME", _verbatim, "the downward API's spec.nodeName",
        "{node} in the log directory pattern.", default=None, yaml=False)
    config_file: str | None = setting(
        "BOOTSTRAP_CONFIG", _verbatim, "a path to a YAML (or JSON) file",
        f"The settings file; default {DEFAULT_CONFIG}, which may be absent (an explicit one may not).",
        default=None, yaml=False)
    log_level: str = setting(
        LEVEL_VAR, parse_log_level, ", ".join(LEVELS),
        "The agent's own messages on stderr; other names mean the default.", default=DEFAULT_LEVEL, yaml=False)

    def remap(self, code: int) -> int:
        return dict(self.exit_remap).get(code, code)


SETTING_ROWS = rows(Settings)
READY_ROWS = rows(ReadyChecks)
SETTINGS = SETTING_ROWS + READY_ROWS  # the whole table
READY_KEYS = tuple(row.name for row in READY_ROWS)
YAML_KEYS = frozenset(row.key for row in SETTING_ROWS if row.key) | {ReadyChecks.SECTION}
_ROW = {row.name: row for row in SETTING_ROWS}
_READY_ROW = {row.name: row for row in READY_ROWS}


# --- the rules the generator shares ------------------------------------------------------------
# dockerfile-gen validates an app spec's name, user, environments and `ready:` with these, so an
# image it generates never carries a value the agent refuses. Each raises SettingError, whose
# `field` is the `where` passed in and `reason` says what is allowed; the parse_* functions
# above (parse_app_name, parse_user, parse_seconds, ...) all take (value, where).


def setting_row(key: str) -> Setting:
    """The row for a YAML key (`stop_timeout`, `ready.timeout`) or, for a setting the file cannot
    hold, its field name (`pod_ip`); KeyError for anything else."""
    for row in SETTINGS:
        if key in (row.key, row.name if row.key is None else None):
            return row
    raise KeyError(key)


def canonical_env(name: str) -> str:
    """The environment an APP_ENV (or an env_overrides key) names: lower case, aliases resolved
    (ENV_ALIASES: production and prd are prod, development is dev)."""
    lower = name.lower()
    return ENV_ALIASES.get(lower, lower)


def parse_ready(value: Any, where: str = ReadyChecks.SECTION) -> ReadyChecks:
    """A `ready:` mapping (keys READY_KEYS) as ReadyChecks, with the agent's defaults for what
    it leaves out (timeout DEFAULT_READY_TIMEOUT, period DEFAULT_READY_PERIOD). Errors name
    `where.key`. `log` stays as written: the agent resolves a relative one under APP_HOME."""
    if not isinstance(value, Mapping):
        reason = f"must be a mapping with keys {', '.join(READY_KEYS)}"
        raise SettingError(where, reason, f"{where} {reason}")
    unknown = sorted(str(k) for k in value if k not in READY_KEYS)
    if unknown:
        reason = f"unknown key; allowed: {', '.join(READY_KEYS)}"
        raise SettingError(f"{where}.{unknown[0]}", reason, f"unknown key '{where}.{unknown[0]}'; allowed: "
                           f"{', '.join(READY_KEYS)}")
    checks = {row.name: row.parse(value[row.name], f"{where}.{row.name}")
              for row in READY_ROWS if value.get(row.name) is not None}
    _log_with_pattern(checks, f"{where}.log", f"{where}.pattern")
    return ReadyChecks(**checks)


def _log_with_pattern(checks: Mapping[str, Any], log_name: str, pattern_name: str) -> None:
    if ("log" in checks) != ("pattern" in checks):
        missing = pattern_name if "log" in checks else log_name
        raise SettingError(missing, f"{log_name} and {pattern_name} must be set together",
                           f"{log_name} and {pattern_name} must be set together "
                           "(a log file and the regex that marks the app as started)")


# --- sources -----------------------------------------------------------------------------


def read_yaml(path: str) -> dict[str, Any]:
    """Reads a settings file. Empty is valid; anything but a mapping with known keys is not."""
    from bootstrap import settings_file  # bounded: size, encoding, depth, digits, no aliases

    data = settings_file.read(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BootstrapError(f"settings file {path} must be a YAML mapping of settings, "
                             f"not a {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in YAML_KEYS)
    if unknown:
        raise SettingError(unknown[0], "unknown key",
                           f"unknown key '{unknown[0]}' in {path}; allowed: {', '.join(sorted(YAML_KEYS))}")
    ready = data.get(ReadyChecks.SECTION)
    if ready is not None:
        if not isinstance(ready, dict):
            raise SettingError("ready", "must be a mapping",
                               f"ready in {path} must be a mapping with keys {', '.join(READY_KEYS)}")
        bad = sorted(str(k) for k in ready if k not in READY_KEYS)
        if bad:
            raise SettingError(f"ready.{bad[0]}", "unknown key",
                               f"unknown key 'ready.{bad[0]}' in {path}; allowed: {', '.join(READY_KEYS)}")
    return data


def _under(home: str, path: str) -> str:
    return os.path.normpath(os.path.join(home, path))


def resolve_env(app_env: str, conf_source: str) -> str:
    """Finds the directory under conf_source for APP_ENV: case-insensitive, with aliases."""
    try:
        dirs = sorted(e.name for e in os.scandir(conf_source) if e.is_dir() and e.name.lower() != COMMON_DIR)
    except FileNotFoundError:
        raise BootstrapError(f"config source {conf_source} does not exist; create it with one directory "
                             f"per environment, or set {_ROW['conf_source'].env}") from None
    except NotADirectoryError:
        raise BootstrapError(f"config source {conf_source} is not a directory; "
                             f"set {_ROW['conf_source'].env}") from None
    except OSError as exc:  # e.g. ELOOP: conf.d is a symlink that (eventually) points at itself
        raise BootstrapError(f"config source {conf_source} cannot be read: {exc.strerror}; "
                             f"make it a directory (or a link to one) or set {_ROW['conf_source'].env}") from None

    var = _ROW["app_env"].env
    wanted = app_env.lower()
    for match in ([d for d in dirs if d.lower() == wanted],
                  [d for d in dirs if canonical_env(d) == canonical_env(wanted)]):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise BootstrapError(f"{var}={app_env!r} matches several directories in {conf_source} "
                                 f"({', '.join(match)}); rename all but one")
    available = ", ".join(dirs) or "none"
    raise BootstrapError(f"{var}={app_env!r} matches no directory in {conf_source} (available: {available}); "
                         f"set {var} to one of them or add {conf_source}/{app_env.lower()}/")


def _config_file(environ: Mapping[str, str]) -> str:
    """The settings file to read, or "" for none: an explicit one must exist, the default may not."""
    var = _ROW["config_file"].env or ""
    explicit = environ.get(var)
    if explicit and not os.path.isfile(explicit):
        raise SettingError(var, "is not a file", f"{var}={explicit!r} is not a file; fix the path or unset it")
    return explicit or (DEFAULT_CONFIG if os.path.isfile(DEFAULT_CONFIG) else "")


def _resolve(table_rows: tuple[Setting, ...], environ: Mapping[str, str], data: Mapping[str, Any],
             config_file: str) -> dict[str, Any]:
    """The values set for these rows: the environment (when not empty) wins over the file;
    rows set nowhere are left out, so the record's defaults apply."""
    values: dict[str, Any] = {}
    for row in table_rows:
        if row.env and environ.get(row.env, "") != "":
            values[row.name] = row.parse(environ[row.env], row.env)
        elif row.key and data.get(row.name) is not None:
            values[row.name] = row.parse(data[row.name], row.where_in(config_file))
    return values


def load(environ: Mapping[str, str]) -> Settings:
    """Resolves the settings from the table's defaults, the settings file and `environ`."""
    config_file = _config_file(environ)
    data = read_yaml(config_file) if config_file else {}

    values = _resolve(SETTING_ROWS, environ, data, config_file)
    _distinct_ports(values)
    ready = _resolve(READY_ROWS, environ, data.get(ReadyChecks.SECTION) or {}, config_file)
    _log_with_pattern(ready, _READY_ROW["log"].env or "", _READY_ROW["pattern"].env or "")
    for row in SETTING_ROWS:
        if row.required and row.name not in values:
            raise SettingError(row.env or row.name, "is not set",
                               f"{row.env} is not set; set it in the environment or as {row.key} in the settings file")

    home = values.get("app_home", _ROW["app_home"].default)
    for row in SETTING_ROWS:
        if row.home_relative:
            values[row.name] = _under(home, values.get(row.name, row.default))
    for row in READY_ROWS:
        if row.home_relative and row.name in ready:
            ready[row.name] = _under(home, ready[row.name])
    if "log_links" in values:
        values["log_links"] = tuple(LogLink(_under(home, link.path), link.subdir) for link in values["log_links"])
    values["config_file"] = config_file or None
    return Settings(**values, env=resolve_env(values["app_env"], values["conf_source"]), ready=ReadyChecks(**ready))


def _distinct_ports(values: dict[str, Any]) -> None:
    """The agent's listeners need a port each."""
    seen: dict[int, str] = {}
    for name in ("http_port", "live_port", "ready_port"):
        port = values.get(name)
        if port is None:
            continue
        env = _ROW[name].env or name
        if port in seen:
            raise SettingError(env, f"is also {seen[port]}",
                               f"{env}={port} is also {seen[port]}: give each of the agent's listeners a port of its own")
        seen[port] = env


def require_command(settings: Settings, argv: list[str]) -> tuple[str, ...]:
    command = tuple(argv) or settings.start
    if not command:
        raise UsageError("no command to run: give one after 'bootstrap run --' or set start: in bootstrap.yaml")
    return command
