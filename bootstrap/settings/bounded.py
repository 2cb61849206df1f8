"""Reading a YAML or JSON file with bounds, so a hostile or broken file costs one error line, never a
traceback, unbounded time or memory, or an echo of the whole bad value.

The agent reads its settings file with it (exit 78); dockerfile-gen reads app specs, image-tree
files and replication.yaml with it, each kind of file with limits of its own (dockerfile_gen.input_files).

Bounds (`Limits`): the size (read at most max_bytes + 1), the encoding (UTF-8 only; UTF-16/32 are
named as such), the nesting depth, the digits of an integer, optionally the number of nodes, and no
YAML aliases (a "billion laughs" file would otherwise expand to gigabytes). dockerfile-gen writes
bootstrap.yaml as JSON, which is read with the json module PID 1 has anyway; yaml is imported only
for a file that is not plain JSON. The YAML bounds are checked on the parser's events before any
node is built: as the pure-Python composer takes them, or, for libyaml's C composer (`FileKind.libyaml`,
several times faster for the thousands of specs of a batch), in a first pass over libyaml's events.
"""
from __future__ import annotations

import os

from bootstrap.errors import BootstrapError
from bootstrap.frozen import frozen
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs PID 1 ~5 ms of start-up; only the type checker needs it
    from typing import Any

JSON_TOKENS = r'"(?:[^"\\]|\\.)*"|[\[\]{}]'  # strings (skipped) and brackets (counted)


@frozen
class Limits:
    """How much of a file the reader takes. The defaults are the settings file's."""

    max_bytes: int = 64 * 1024  # a generated bootstrap.yaml is about 1 KiB; PyYAML reads 64 KiB well within 1 s
    max_depth: int = 16  # settings nest three levels deep (ready:, links: items); the margin is generous
    max_digits: int = 32  # ports, exit codes and seconds; far below Python's 4300-digit int() limit
    max_nodes: int = 0  # 0: not counted (the size and the ban on aliases bound a settings file)


@frozen
class FileKind:
    """How the messages name a kind of file: "LABEL PATH is larger than 64 KiB; SIZE_HINT"."""

    label: str
    content: str  # what the file holds: "aliases are not allowed in CONTENT"
    size_hint: str  # what such a file is like, after a size or node-count error
    depth_hint: str  # how deep such a file nests, after a depth error
    libyaml: bool = False  # libyaml's parser (several times faster), when PyYAML has it


SETTINGS_LIMITS = Limits()
SETTINGS_FILE = FileKind(
    label="settings file", content="settings",
    size_hint="a settings file holds a few dozen keys: check that BOOTSTRAP_CONFIG names the right file",
    depth_hint="settings are at most three levels deep")


class FileError(BootstrapError):
    """A file the reader refuses. `detail` is the message without "LABEL PATH", for a caller that
    names the file its own way; `syntax` says what PyYAML expected where, for a YAML syntax error."""

    def __init__(self, message: str, path: str, detail: str, syntax: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.detail = detail
        self.syntax = syntax


def read(path: str, limits: Limits = SETTINGS_LIMITS, kind: FileKind = SETTINGS_FILE) -> Any:
    """The parsed document (None for an empty file), or FileError naming the file and the fix."""
    return _BoundedFile(path, limits, kind).read()


class _BoundedFile:
    def __init__(self, path: str, limits: Limits, kind: FileKind) -> None:
        self.path = path
        self.limits = limits
        self.kind = kind
        self.depth = self.nodes = 0  # of the YAML events checked so far
        self.roles: dict[type, str] = {}

    def fail(self, detail: str, syntax: str = "") -> FileError:
        return FileError(f"{self.kind.label} {self.path} {detail}", self.path, detail, syntax)

    def read(self) -> Any:
        text = self.decode(self.read_bounded())
        stripped = text.lstrip()
        if not stripped:
            return None
        if stripped.startswith("{"):
            data = self.parse_json(text)
            if data is not None:
                return data
        return self.parse_yaml(text)

    def read_bounded(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as fh:
                # read(n) allocates n bytes first: a small first read keeps small files cheap
                first = min(self.limits.max_bytes + 1, 1 << 16)
                data = fh.read(first)
                if len(data) == first and first <= self.limits.max_bytes:
                    data += fh.read(self.limits.max_bytes + 1 - first)
        except OSError as exc:
            raise FileError(f"cannot read {self.kind.label} {self.path}: {exc.strerror}", self.path,
                            f"cannot read: {exc.strerror}") from None
        if len(data) > self.limits.max_bytes:
            raise self.fail(f"is larger than {self.limits.max_bytes // 1024} KiB; {self.kind.size_hint}")
        return data

    def decode(self, data: bytes) -> str:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and b"\0" in data[:2]):
            raise self.fail("is UTF-16 or UTF-32; save it as UTF-8")
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self.fail(f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8") from None

    def too_deep(self, where: str) -> FileError:
        return self.fail(f"nests deeper than {self.limits.max_depth} levels{where}; {self.kind.depth_hint}")

    def too_long(self, digits: int, where: str = "") -> FileError:
        return self.fail(f"has an integer of {digits} digits{where}; "
                         f"numbers in {self.kind.content} have at most {self.limits.max_digits}")

    def too_many(self, where: str = "") -> FileError:
        return self.fail(f"has more than {self.limits.max_nodes} YAML nodes{where}; {self.kind.size_hint}")

    def parse_json(self, text: str) -> Any:
        """Plain JSON, or None when the text is not JSON (then it goes to the YAML parser)."""
        import json
        import re

        depth = 0
        for token in re.findall(JSON_TOKENS, text):
            if token in ("[", "{"):
                depth += 1
                if depth > self.limits.max_depth:
                    raise self.too_deep("")
            elif token in ("]", "}"):
                depth -= 1

        def parse_int(digits: str) -> int:
            if len(digits.lstrip("-")) > self.limits.max_digits:
                raise self.too_long(len(digits.lstrip("-")))
            return int(digits)

        try:
            data = json.loads(text, parse_int=parse_int)
        except (ValueError, RecursionError):
            return None
        if self.limits.max_nodes and _nodes(data, self.limits.max_nodes) > self.limits.max_nodes:
            raise self.too_many()
        return data

    def parse_yaml(self, text: str) -> Any:
        import yaml  # lazily: only for a file that is not plain JSON

        libyaml = self.kind.libyaml and getattr(yaml, "__with_libyaml__", False)
        self.roles = _event_roles()
        try:
            if libyaml:  # libyaml composes in C, without a hook: its events are checked in a first pass
                self.check_all(yaml.CSafeLoader(text))
            loader = _loader_class(libyaml)(text)
            loader.bounded = self
            try:
                return loader.get_single_data()
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise self.fail(f"is not valid YAML{where}; fix the syntax", _syntax(exc)) from None
        except (RecursionError, ValueError) as exc:  # a last guard: bounded above, but never a traceback
            raise self.fail(f"cannot be read as {self.kind.content} ({type(exc).__name__}); fix the file") from None

    def check_all(self, parser: Any) -> None:
        check, get = self.check, parser.get_event
        try:
            while (event := get()) is not None:
                check(event)
        finally:
            parser.dispose()
        self.depth = self.nodes = 0

    def check(self, event: Any) -> None:
        """The bounds on one parser event, in document order, before any node is built: no alias,
        no node deeper than max_depth (a scalar is a level, like each collection around it), at
        most max_nodes nodes."""
        role = self.roles.get(type(event))
        if role is None:  # the stream's and documents' own events
            return
        if role == "end":
            self.depth -= 1
            return
        line = event.start_mark.line + 1
        if role == "alias":
            raise self.fail(f"uses a YAML alias (*name) on line {line}; "
                            f"aliases are not allowed in {self.kind.content}: write the value out")
        self.nodes += 1
        if self.limits.max_nodes and self.nodes > self.limits.max_nodes:
            raise self.too_many(f" (line {line})")
        if self.depth >= self.limits.max_depth:
            raise self.too_deep(f" (line {line})")
        if role == "start":
            self.depth += 1


def _nodes(data: Any, limit: int) -> int:
    """The nodes of parsed JSON as YAML counts them (a mapping's keys too), up to just past `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _syntax(exc: Exception) -> str:
    """One line: "line L, column C: what PyYAML expected" (at most 200 characters of it)."""
    problem = getattr(exc, "problem", None)
    if problem is None:
        return " ".join(str(exc).split())[:200]
    mark = getattr(exc, "problem_mark", None)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return at + " ".join(str(problem).split())[:200]


def _event_roles() -> dict[type, str]:
    """What each YAML event is to the bounds (the parsers make these exact classes)."""
    from yaml import events

    return {events.AliasEvent: "alias", events.ScalarEvent: "node", events.MappingStartEvent: "start",
            events.SequenceStartEvent: "start", events.MappingEndEvent: "end", events.SequenceEndEvent: "end"}


_LOADERS: dict[bool, Any] = {}


def _loader_class(libyaml: bool) -> Any:
    """A SafeLoader whose int constructor counts digits before int() runs. The pure-Python one
    checks each event as its composer takes it; libyaml's events are checked before (check_all)."""
    if libyaml in _LOADERS:
        return _LOADERS[libyaml]
    import yaml

    def construct_int(loader: Any, node: Any) -> Any:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > loader.bounded.limits.max_digits:
            raise loader.bounded.too_long(digits, f" on line {node.start_mark.line + 1}")
        return yaml.SafeLoader.construct_yaml_int(loader, node)

    loader: Any
    if libyaml:
        class LibyamlLoader(yaml.CSafeLoader):
            bounded: _BoundedFile

        loader = LibyamlLoader
    else:
        class PythonLoader(yaml.SafeLoader):
            bounded: _BoundedFile

            def get_event(self) -> Any:
                event = super().get_event()  # type: ignore[no-untyped-call]
                self.bounded.check(event)
                return event

        loader = PythonLoader
    loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _LOADERS[libyaml] = loader
    return loader
