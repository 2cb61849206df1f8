"""Reading the settings file with bounds, so a hostile or broken file costs one error line (exit
78), never a traceback, unbounded time or memory, or an echo of the whole bad value.

Bounds: the size (read at most MAX_BYTES + 1), the encoding (UTF-8 only; UTF-16/32 are named as
such), the nesting depth, the digits of an integer, and no YAML aliases (a "billion laughs" file
would otherwise expand to gigabytes). dockerfile-gen writes bootstrap.yaml as JSON, which is read
with the json module PID 1 has anyway; yaml is imported only for a file that is not plain JSON.
"""
from __future__ import annotations

import os

from bootstrap.errors import BootstrapError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 64 * 1024  # a generated bootstrap.yaml is about 1 KiB; PyYAML reads 64 KiB well within 1 s
MAX_DEPTH = 16  # settings nest three levels deep (ready:, links: items); the margin is generous
MAX_DIGITS = 32  # ports, exit codes and seconds; far below Python's 4300-digit int() limit
JSON_TOKENS = r'"(?:[^"\\]|\\.)*"|[\[\]{}]'  # strings (skipped) and brackets (counted)


def read(path: str) -> Any:
    """The parsed document (None for an empty file), or BootstrapError naming the file and the fix."""
    text = decode(path, read_bounded(path))
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        data = _parse_json(text, path)
        if data is not None:
            return data
    return _parse_yaml(text, path)


def read_bounded(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BootstrapError(f"cannot read settings file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BootstrapError(f"cannot read settings file {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise BootstrapError(f"settings file {path} is larger than {MAX_BYTES // 1024} KiB; "
                             "a settings file holds a few dozen keys: check that BOOTSTRAP_CONFIG names the right file")
    return data


def decode(path: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and b"\0" in data[:2]):
        raise BootstrapError(f"settings file {path} is UTF-16 or UTF-32; save it as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BootstrapError(f"settings file {path} is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                             "save it as UTF-8") from None


def _too_deep(path: str, where: str) -> BootstrapError:
    return BootstrapError(f"settings file {path} nests deeper than {MAX_DEPTH} levels{where}; "
                          "settings are at most three levels deep")


def _too_long(path: str, digits: int, where: str = "") -> BootstrapError:
    return BootstrapError(f"settings file {path} has an integer of {digits} digits{where}; "
                          f"numbers in settings have at most {MAX_DIGITS}")


def _parse_json(text: str, path: str) -> Any:
    """Plain JSON, or None when the text is not JSON (then it goes to the YAML parser)."""
    import json
    import re

    depth = 0
    for token in re.findall(JSON_TOKENS, text):
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(path, "")
        elif token in ("]", "}"):
            depth -= 1

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_DIGITS:
            raise _too_long(path, len(digits.lstrip("-")))
        return int(digits)

    try:
        return json.loads(text, parse_int=parse_int)
    except (ValueError, RecursionError):
        return None


def _parse_yaml(text: str, path: str) -> Any:
    import yaml  # lazily: only for a settings file that is not plain JSON

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader without aliases, with a depth limit and short integers."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise BootstrapError(f"settings file {path} uses a YAML alias (*name) on line {mark.line + 1}; "
                                     "aliases are not allowed in settings: write the value out") from None
            self.depth += 1
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _too_deep(path, f" (line {mark.line + 1})")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_yaml_int(self, node: Any) -> Any:
            digits = sum(c.isdigit() for c in str(node.value))
            if digits > MAX_DIGITS:
                raise _too_long(path, digits, f" on line {node.start_mark.line + 1}")
            return super().construct_yaml_int(node)

    BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BootstrapError(f"settings file {path} is not valid YAML{where}; fix the syntax") from None
    except (RecursionError, ValueError) as exc:  # a last guard: bounded above, but never a traceback
        raise BootstrapError(f"settings file {path} cannot be read as settings ({type(exc).__name__}); "
                             "fix the file") from None
