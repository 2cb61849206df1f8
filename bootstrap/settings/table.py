"""The settings table: the `Settings` and `ReadyChecks` records, one `setting(...)` row per
setting, with its environment variable written out in full, its parser, default, allowed values
and a doc line. `resolve.load` is driven by it; YAML keys are the field names (`ready.` for the
checks). Every value is validated by its row's parser, once, so later steps can trust it.
"""
from __future__ import annotations

import signal
from collections.abc import Mapping

from bootstrap.errors import SettingError
from bootstrap.log import DEFAULT_LEVEL, LEVEL_VAR, LEVELS
from bootstrap.rundir import DEFAULT_RUN_DIR, RUN_DIR_VAR
from bootstrap.settings.fields import Setting, rows, setting, table
from bootstrap.settings.parsers import (
    APP_NAME_PATTERN,
    DEFAULT_CONF_SOURCE,
    DEFAULT_CONFIG,
    DEFAULT_READY_PERIOD,
    DEFAULT_READY_TIMEOUT,
    LOG_PLACEHOLDERS,
    Link,
    LogLink,
    parse_abs_path,
    parse_app_name,
    parse_bool,
    parse_command,
    parse_exit_remap,
    parse_ip,
    parse_jvm_mode,
    parse_links,
    parse_log_level,
    parse_log_links,
    parse_log_pattern,
    parse_pattern,
    parse_port,
    parse_reload,
    parse_seconds,
    parse_signal,
    parse_tcp,
    parse_text,
    parse_url,
    parse_user,
    parse_verbatim,
)
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from typing import Any


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
        return any(getattr(self, key) for key in READY_CHECK_KEYS)


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
        "Holds an optional common/ and one directory per environment.", default=DEFAULT_CONF_SOURCE,
        home_relative=True)
    conf_target: str = setting(
        "BOOTSTRAP_CONF_TARGET", parse_text, "a path",
        "Where the app reads its config.", default="conf", home_relative=True)
    conf_overlay: str | None = setting(
        "BOOTSTRAP_CONF_OVERLAY", parse_abs_path, "an absolute path",
        "A directory whose files are linked over conf.d/<env>/ (the chart mounts the ConfigMap there); "
        "off when unset.", default=None)
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
        "BOOTSTRAP_USER", parse_user, "a user name or uid[:gid]; empty: no switch",
        "Root only: setup runs as root, the app as this user. Empty (also `BOOTSTRAP_USER=`) or the agent's "
        "own ids: the app runs as the agent does.", default=None)
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
    exit_on_failed: bool = setting(
        "BOOTSTRAP_EXIT_ON_FAILED", parse_bool, "1/0, true/false, yes/no, on/off",
        "Stop the app and exit when the readiness state turns `failed`, where no kubelet restarts the "
        "container (plain podman or docker).", default=False)
    jvm: str = setting(
        "BOOTSTRAP_JVM", parse_jvm_mode, "auto or off",
        "auto: JVM flags sized to the cgroup's memory limit, and OutOfMemoryError forensics, in the app's "
        "JAVA_TOOL_OPTIONS (docs/jvm.md); a flag the user set wins.", default="auto")
    reload: str = setting(
        "BOOTSTRAP_RELOAD", parse_reload, "off, restart, exit, signal:NAME or http:URL",
        "What a change of the config files does (docs/contract.md, config reload); off: nothing.", default="off")
    reload_debounce: float = setting(
        "BOOTSTRAP_RELOAD_DEBOUNCE", parse_seconds, "seconds >= 0",
        "A reload acts once the config files have not changed for this long.", default=2.0)
    reload_spread: float = setting(
        "BOOTSTRAP_RELOAD_SPREAD", parse_seconds, "seconds >= 0",
        "After the debounce, a further delay in [0, spread) derived from POD_NAME.", default=0.0)
    reload_check: tuple[str, ...] | None = setting(
        "BOOTSTRAP_RELOAD_CHECK", parse_command, "a command: a string split like a shell would, or a list",
        "Run as BOOTSTRAP_USER in APP_HOME before a reload; non-zero: no reload.", default=None)
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
        "POD_NAME", parse_verbatim, "the downward API's metadata.name",
        "{pod} in the log directory pattern.", default=None, yaml=False)
    namespace: str | None = setting(
        "POD_NAMESPACE", parse_verbatim, "the downward API's metadata.namespace",
        "{namespace} in the log directory pattern.", default=None, yaml=False)
    node: str | None = setting(
        "NODE_NAME", parse_verbatim, "the downward API's spec.nodeName",
        "{node} in the log directory pattern.", default=None, yaml=False)
    config_file: str | None = setting(
        "BOOTSTRAP_CONFIG", parse_verbatim, "a path to a YAML (or JSON) file",
        f"The settings file; default {DEFAULT_CONFIG}, which may be absent (an explicit one may not).",
        default=None, yaml=False)
    log_level: str = setting(
        LEVEL_VAR, parse_log_level, ", ".join(LEVELS),
        "The agent's own messages on stderr; other names mean the default.", default=DEFAULT_LEVEL, yaml=False)

    def remap(self, code: int) -> int:
        return dict(self.exit_remap).get(code, code)


SETTING_ROWS = rows(Settings)
# Settings whose empty value means "none", also in the environment (where empty otherwise means
# unset): `BOOTSTRAP_USER=` clears a `user:` the settings file names.
EMPTY_MEANS_NONE = frozenset({"user"})
READY_ROWS = rows(ReadyChecks)
SETTINGS = SETTING_ROWS + READY_ROWS  # the whole table
READY_KEYS = tuple(row.name for row in READY_ROWS)
# The checks themselves: each is off unless set (default None); timeout and period time them.
READY_CHECK_KEYS = tuple(row.name for row in READY_ROWS if row.default is None)
YAML_KEYS = frozenset(row.key for row in SETTING_ROWS if row.key) | {ReadyChecks.SECTION}
ROW = {row.name: row for row in SETTING_ROWS}
READY_ROW = {row.name: row for row in READY_ROWS}


# --- the rows the generator shares ---------------------------------------------------------------
# dockerfile-gen checks an app spec's `ready:` and settings keys against these rows.


def setting_row(key: str) -> Setting:
    """The row for a YAML key (`stop_timeout`, `ready.timeout`) or, for a setting the file cannot
    hold, its field name (`pod_ip`); KeyError for anything else."""
    for row in SETTINGS:
        if key in (row.key, row.name if row.key is None else None):
            return row
    raise KeyError(key)


def parse_ready(value: Any, where: str = ReadyChecks.SECTION) -> ReadyChecks:
    """A `ready:` mapping (keys READY_KEYS) as ReadyChecks, with the agent's defaults for what
    it leaves out (timeout DEFAULT_READY_TIMEOUT, period DEFAULT_READY_PERIOD). Errors name
    `where.key`. `log` stays as written: the agent resolves a relative one under APP_HOME."""
    check_ready_keys(value, where)
    checks = {row.name: row.parse(value[row.name], f"{where}.{row.name}")
              for row in READY_ROWS if value.get(row.name) is not None}
    check_log_with_pattern(checks, f"{where}.log", f"{where}.pattern")
    return ReadyChecks(**checks)


def check_ready_keys(value: Any, where: str, source: str = "") -> None:
    """A `ready:` section is a mapping of READY_KEYS. Errors name `where` and the file, `source`."""
    in_file = f" in {source}" if source else ""
    keys = ", ".join(READY_KEYS)
    if not isinstance(value, Mapping):
        reason = f"must be a mapping with keys {keys}"
        raise SettingError(where, reason, f"{where}{in_file} {reason}")
    unknown = sorted(str(k) for k in value if k not in READY_KEYS)
    if unknown:
        reason = f"unknown key; allowed: {keys}"
        raise SettingError(f"{where}.{unknown[0]}", reason, f"unknown key '{where}.{unknown[0]}'{in_file}; allowed: {keys}")


def check_log_with_pattern(checks: Mapping[str, Any], log_name: str, pattern_name: str) -> None:
    if ("log" in checks) != ("pattern" in checks):
        missing = pattern_name if "log" in checks else log_name
        raise SettingError(missing, f"{log_name} and {pattern_name} must be set together",
                           f"{log_name} and {pattern_name} must be set together "
                           "(a log file and the regex that marks the app as started)")
