"""Frozen dataclass-style records for PID 1, without importing `dataclasses`.

`dataclasses` imports `inspect` and with it ast, dis and tokenize: on the 2-core reference VM
that alone adds about 9 ms to a 11 ms interpreter start, most of PID 1's start-up budget
(docs/contract.md, "Budgets": at most 2× `python3 -c pass`; `bench/run.py` measures it).
`frozen` gives the same shape for what PID 1 needs: typed fields with defaults (or a `Field`
holding one), immutability, equality, hashing, repr, `replace` and `asdict`. Type checkers see it as a frozen dataclass through dataclass_transform.
"""
from __future__ import annotations

from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, TypeVar
    from typing import dataclass_transform as dataclass_transform  # re-exported for settings.fields

    T = TypeVar("T")
else:
    def dataclass_transform(**_kwargs):  # noqa: D103 - only the type checker needs the real one
        return lambda decorator: decorator


class FrozenInstanceError(AttributeError):
    pass


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # the default of a field that has none


class Field:
    """A class attribute that declares a field with more than a default (see `settings.setting`):
    a subclass sets `default`, the field's default, or MISSING when the field is required."""

    __slots__ = ()
    default: Any


def _fields(cls: type) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        names.update(dict.fromkeys(klass.__dict__.get("__annotations__", {})))
    return tuple(names)


@dataclass_transform(frozen_default=True)
def frozen(cls: type[T]) -> type[T]:
    """Class decorator: fields are the annotated class attributes, in order; a class attribute
    is that field's default (defaults are shared, so use only immutable ones), or a `Field`
    that holds it."""
    names = _fields(cls)
    defaults = {}
    for name in names:
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, Field):
            value = value.default
        if value is not MISSING:
            defaults[name] = value

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes {len(names)} fields, got {len(args)} positional")
        values = dict(zip(names, args))
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
        values.update(kwargs)
        for name in names:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            else:
                raise TypeError(f"{cls.__name__} is missing the field {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self: Any, name: str, _value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: {cls.__name__} is frozen")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: {cls.__name__} is frozen")

    def __eq__(self: Any, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __repr__(self: Any) -> str:
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    for name, method in (("__init__", __init__), ("__setattr__", __setattr__), ("__delattr__", __delattr__),
                         ("__eq__", __eq__), ("__repr__", __repr__)):
        setattr(cls, name, method)
    setattr(cls, "__hash__", lambda self: hash(_values(self)))
    setattr(cls, "__record_fields__", names)
    return cls


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in obj.__record_fields__)


def replace(obj: T, **changes: Any) -> T:
    values = {name: getattr(obj, name) for name in obj.__record_fields__}  # type: ignore[attr-defined]
    values.update(changes)
    return type(obj)(**values)


def asdict(obj: Any) -> dict[str, Any]:
    """Fields as a dict; nested records, tuples and lists of records are converted too."""
    def convert(value: Any) -> Any:
        if hasattr(value, "__record_fields__"):
            return asdict(value)
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        return value

    return {name: convert(getattr(obj, name)) for name in obj.__record_fields__}
