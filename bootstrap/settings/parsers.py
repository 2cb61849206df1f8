"""The settings' parsers and the names they check: each takes (value, where) and raises
SettingError naming `where`, the environment variable or YAML key the value came from.

These are the rules the generator shares: dockerfile-gen validates an app spec's name, user,
environments and `ready:` with them, so an image it generates never carries a value the agent
refuses. PID 1 imports only the standard library here.
"""
from __future__ import annotations

import math
import os
import re
import signal
from collections.abc import Mapping

from bootstrap.errors import BootstrapError, SettingError
from bootstrap.frozen import frozen
from bootstrap.log import DEFAULT_LEVEL, LEVELS
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from typing import Any

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
DEFAULT_CONF_SOURCE = "conf.d"  # under APP_HOME; also where an app spec keeps its config by default
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


def parse_verbatim(value: Any, where: str) -> str:
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


def parse_reload(value: Any, where: str) -> str:
    """What a change of the config files does (BOOTSTRAP_RELOAD): `off`, `restart`, `exit`,
    `signal:NAME` (stored as `signal:SIGNAME`) or `http:URL` (an http:// or https:// URL, POSTed)."""
    if value is False:  # YAML 1.1 reads a bare `off` as false
        return "off"
    text = parse_text(value, where)
    kind, sep, arg = text.partition(":")
    kind = kind.lower()
    if not sep and kind in ("off", "restart", "exit"):
        return kind
    if sep and kind == "signal":
        try:
            sig = signal.Signals(parse_signal(arg, where))
        except BootstrapError:
            raise _fail(where, value, "signal:NAME needs a signal the app can catch, e.g. signal:HUP or "
                        "signal:SIGUSR2") from None
        return f"signal:{sig.name}"
    if sep and kind == "http" and re.match(URL_PATTERN, arg.strip()):
        return f"http:{arg.strip()}"
    raise _fail(where, value, "use off, restart, exit, signal:NAME (e.g. signal:HUP) or http:URL "
                "(e.g. http:http://127.0.0.1:8080/actuator/refresh)")


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


def canonical_env(name: str) -> str:
    """The environment an APP_ENV (or an env_overrides key) names: lower case, aliases resolved
    (ENV_ALIASES: production and prd are prod, development is dev)."""
    lower = name.lower()
    return ENV_ALIASES.get(lower, lower)
