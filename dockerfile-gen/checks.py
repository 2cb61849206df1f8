"""Validators for every value a user writes. Each returns the clean value or raises GenError.

Anything that reaches a Dockerfile line or a shell word is checked here first, and quoted again
where it is rendered: validation rejects what no quoting makes safe (newlines end a Dockerfile
instruction), quoting handles the rest.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from bootstrap.errors import SettingError
from bootstrap.settings.parsers import parse_app_name, parse_user
from dockerfile_gen.errors import GenError

T = TypeVar("T")
IMAGE_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# Relative build-context paths: no shell or Dockerfile metacharacters, no whitespace.
REL_PATH = re.compile(r"[A-Za-z0-9_@+=,.-][A-Za-z0-9_@+=,./-]*")
# JVM options go into JAVA_TOOL_OPTIONS, which the JVM splits on whitespace, and may be expanded
# unquoted by a shell start (`exec java $JAVA_OPTS …`), so globbing and splitting characters are
# refused along with the usual shell metacharacters.
JVM_OPTION = re.compile(r"-[A-Za-z0-9_@+=,.:/%-]*")
LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")
VERSION_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SHELL_META = re.compile(r"[;&|$`\\\"'<>(){}\[\]*?!~#\s]")


def fail(where: str, key: str, message: str) -> NoReturn:
    raise GenError(message, where, key)


def mapping(value: Any, where: str, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(where, key, f"must be a mapping (got {type_name(value)})")
    for k in value:
        if not isinstance(k, str):
            fail(where, key, f"keys must be strings (got {k!r})")
    return value


def known_keys(value: Mapping[str, Any], allowed: frozenset[str], where: str, key: str) -> None:
    unknown = value.keys() - allowed
    if unknown:
        first = sorted(unknown)[0]
        path = f"{key}.{first}" if key else first
        fail(where, path, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def string(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        fail(where, key, f"must be a non-empty string (got {value!r})")
    if CONTROL.search(value):
        fail(where, key, f"must not contain newlines or control characters (got {value!r})")
    return value


def matching(value: Any, pattern: re.Pattern[str], what: str, where: str, key: str) -> str:
    text = string(value, where, key)
    if not pattern.fullmatch(text):
        fail(where, key, f"{text!r} is not {what}")
    return text


def integer(value: Any, where: str, key: str, low: int, high: int | None = None) -> int:
    # bool is an int subclass: `replicas: yes` must not become 1.
    if not isinstance(value, int) or isinstance(value, bool):
        fail(where, key, f"must be an integer (got {value!r})")
    if value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        fail(where, key, f"{value} is out of range ({bound})")
    return value


def port(value: Any, where: str, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        fail(where, key, f"{value!r} is not a port number (1-65535)")
    return value


def string_list(value: Any, where: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        fail(where, key, f"must be a list (got {type_name(value)})")
    return value


def rel_path(value: Any, where: str, key: str) -> str:
    text = string(value, where, key)
    if text.startswith("/"):
        fail(where, key, f"{text!r} must be relative to the spec's directory (the build context)")
    parts = text.split("/")
    if ".." in parts:
        fail(where, key, f"{text!r} must not contain '..': it has to stay inside the build context")
    if not REL_PATH.fullmatch(text):
        fail(where, key, f"{text!r} has characters not allowed in a path (letters, digits, _@+=,.-/ only)")
    return text.rstrip("/") or "."


def agent_rule(parse: Callable[[Any, str], T], value: Any, where: str, key: str) -> T:
    """A value the agent reads too, checked by the agent's own parser (bootstrap.settings), so the
    generator never writes what the agent would refuse at start. Control characters are refused
    first: they would end a Dockerfile line."""
    if isinstance(value, str):
        string(value, where, key)
    try:
        return parse(value, key)
    except SettingError as exc:
        fail(where, exc.field, f"{value!r} is invalid: {exc.reason}" if exc.field == key else exc.reason)


def app_name(value: Any, where: str, key: str) -> str:
    return agent_rule(parse_app_name, value, where, key)


def user(value: Any, where: str, key: str) -> str:
    return agent_rule(parse_user, value, where, key)


def jvm_option(value: Any, where: str, key: str) -> str:
    text = string(value, where, key)
    if not text.startswith("-"):
        fail(where, key, f"{text!r} must start with '-'")
    bad = SHELL_META.search(text)
    if bad:
        fail(where, key, f"{text!r} contains {bad.group()!r}: JVM options may not hold whitespace or shell metacharacters")
    if not JVM_OPTION.fullmatch(text):
        fail(where, key, f"{text!r} has characters not allowed in a JVM option")
    return text


def shell_word(value: Any, where: str, key: str) -> str:
    """A word of an exec-form command. It is quoted when rendered; only what quoting cannot fix is refused."""
    return string(value, where, key)


def label_value(value: Any, where: str, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        fail(where, key, f"must be a string (got {type_name(value)})")
    text = str(value)
    if CONTROL.search(text):
        fail(where, key, f"must not contain newlines or control characters (got {text!r})")
    return text
