"""Resolving the settings: built-in defaults < bootstrap.yaml < environment, into one frozen
`Settings` record. An error names the environment variable or YAML key it came from and says what
is allowed (`SettingError`, exit 78). yaml is imported only when a settings file is not plain JSON.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from bootstrap.errors import BootstrapError, SettingError, UsageError
from bootstrap.settings.fields import Setting
from bootstrap.settings.parsers import COMMON_DIR, DEFAULT_CONFIG, LogLink, canonical_env
from bootstrap.settings.table import (
    EMPTY_MEANS_NONE,
    READY_ROW,
    READY_ROWS,
    ROW,
    SETTING_ROWS,
    YAML_KEYS,
    ReadyChecks,
    Settings,
    check_log_with_pattern,
    check_ready_keys,
)
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from typing import Any


def read_yaml(path: str) -> dict[str, Any]:
    """Reads a settings file. Empty is valid; anything but a mapping with known keys is not."""
    from bootstrap.settings import bounded  # bounded: size, encoding, depth, digits, no aliases

    data = bounded.read(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BootstrapError(f"settings file {path} must be a YAML mapping of settings, "
                             f"not a {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in YAML_KEYS)
    if unknown:
        raise SettingError(unknown[0], "unknown key",
                           f"unknown key '{unknown[0]}' in {path}; allowed: {', '.join(sorted(YAML_KEYS))}")
    if data.get(ReadyChecks.SECTION) is not None:
        check_ready_keys(data[ReadyChecks.SECTION], ReadyChecks.SECTION, path)
    return data


def _under(home: str, path: str) -> str:
    return os.path.normpath(os.path.join(home, path))


def resolve_env(app_env: str, conf_source: str) -> str:
    """Finds the directory under conf_source for APP_ENV: case-insensitive, with aliases."""
    try:
        dirs = sorted(e.name for e in os.scandir(conf_source) if e.is_dir() and e.name.lower() != COMMON_DIR)
    except FileNotFoundError:
        raise BootstrapError(f"config source {conf_source} does not exist; create it with one directory "
                             f"per environment, or set {ROW['conf_source'].env}") from None
    except NotADirectoryError:
        raise BootstrapError(f"config source {conf_source} is not a directory; "
                             f"set {ROW['conf_source'].env}") from None
    except OSError as exc:  # e.g. ELOOP: conf.d is a symlink that (eventually) points at itself
        raise BootstrapError(f"config source {conf_source} cannot be read: {exc.strerror}; "
                             f"make it a directory (or a link to one) or set {ROW['conf_source'].env}") from None

    var = ROW["app_env"].env
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
    var = ROW["config_file"].env or ""
    explicit = environ.get(var)
    if explicit and not os.path.isfile(explicit):
        raise SettingError(var, "is not a file", f"{var}={explicit!r} is not a file; fix the path or unset it")
    return explicit or (DEFAULT_CONFIG if os.path.isfile(DEFAULT_CONFIG) else "")


def _resolve(table_rows: tuple[Setting, ...], environ: Mapping[str, str], data: Mapping[str, Any],
             config_file: str) -> dict[str, Any]:
    """The values set for these rows: the environment (when not empty) wins over the file;
    rows set nowhere are left out, so the record's defaults apply. A row of EMPTY_MEANS_NONE set
    empty (in the environment, or "" in the file) is None."""
    values: dict[str, Any] = {}
    for row in table_rows:
        if row.env and environ.get(row.env, "") != "":
            values[row.name] = row.parse(environ[row.env], row.env)
        elif row.name in EMPTY_MEANS_NONE and (row.env in environ or data.get(row.name) == ""):
            values[row.name] = None  # set, and empty: "none", whatever the file says
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
    check_log_with_pattern(ready, READY_ROW["log"].env or "", READY_ROW["pattern"].env or "")
    for row in SETTING_ROWS:
        if row.required and row.name not in values:
            raise SettingError(row.env or row.name, "is not set",
                               f"{row.env} is not set; set it in the environment or as {row.key} in the settings file")

    home = values.get("app_home", ROW["app_home"].default)
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
        env = ROW[name].env or name
        if port in seen:
            raise SettingError(env, f"is also {seen[port]}",
                               f"{env}={port} is also {seen[port]}: give each of the agent's listeners a port of its own")
        seen[port] = env


def require_command(settings: Settings, argv: list[str]) -> tuple[str, ...]:
    command = tuple(argv) or settings.start
    if not command:
        raise UsageError("no command to run: give one after 'bootstrap run --' or set start: in bootstrap.yaml")
    return command
