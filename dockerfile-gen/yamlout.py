"""A small deterministic YAML writer for the documents this package emits.

PyYAML's emitter is generic and slow; generating thousands of specs spends most of its time there.
The documents here hold only dicts (kept in insertion order), lists, strings, ints and bools, so a
direct writer is short. Strings are written plain only when no YAML 1.1 or 1.2 reader can take
them for anything but a string; everything else is double-quoted with JSON escapes, which are valid
YAML. tests/gen/test_yamlout.py round-trips it through PyYAML.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./+-]*")
# Words some YAML reader turns into a bool or null (YAML 1.1 is the widest set).
_RESERVED = frozenset(
    "y yes n no on off true false null".split()
)


def scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_scalar_list(value: Sequence[Any]) -> bool:
    return all(not isinstance(item, (Mapping, list, tuple)) for item in value)


def _lines(value: Any, indent: str, out: list[str]) -> None:
    """Writes the body of a mapping at `indent`."""
    for key, item in value.items():
        head = f"{indent}{scalar(key)}:"
        if isinstance(item, Mapping):
            if item:
                out.append(head)
                _lines(item, indent + "  ", out)
            else:
                out.append(head + " {}")
        elif isinstance(item, (list, tuple)):
            if not item or _is_scalar_list(item):
                out.append(f"{head} [{', '.join(scalar(v) for v in item)}]")
            else:
                out.append(head)
                _sequence(item, indent + "  ", out)
        else:
            out.append(f"{head} {scalar(item)}")


def _sequence(items: Sequence[Any], indent: str, out: list[str]) -> None:
    for item in items:
        body: list[str] = []
        if isinstance(item, Mapping) and item:
            _lines(item, indent + "  ", body)
        elif isinstance(item, (list, tuple)) and item and not _is_scalar_list(item):
            _sequence(item, indent + "  ", body)
        elif isinstance(item, (list, tuple)):
            body = [f"{indent}  [{', '.join(scalar(v) for v in item)}]"]
        else:
            body = [f"{indent}  {'{}' if isinstance(item, Mapping) else scalar(item)}"]
        out.append(indent + "- " + body[0][len(indent) + 2:])
        out.extend(body[1:])


def dump(document: Mapping[str, Any], header: str = "") -> str:
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _lines(document, "", out)
    return "\n".join(out) + "\n"
