"""bootstrap.frozen.frozen: the dataclass-like records PID 1 uses instead of importing dataclasses."""
from __future__ import annotations

import pytest

from bootstrap.frozen import FrozenInstanceError, asdict, frozen, replace


@frozen
class Inner:
    a: int
    b: str = "x"


@frozen
class Outer:
    name: str
    inner: Inner = Inner(1)
    items: tuple[Inner, ...] = ()


def test_fields_defaults_and_positional_args() -> None:
    assert Inner(2) == Inner(a=2, b="x")
    assert Inner(2, "y").b == "y"
    assert Outer("n").inner == Inner(1)


def test_missing_and_unknown_fields_are_errors() -> None:
    with pytest.raises(TypeError, match="missing the field 'a'"):
        Inner()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no field 'c'"):
        Inner(1, c=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 2 fields"):
        Inner(1, "b", 3)  # type: ignore[call-arg]


def test_frozen() -> None:
    record = Inner(1)
    with pytest.raises(FrozenInstanceError):
        record.a = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del record.a  # type: ignore[misc]


def test_equality_hash_repr() -> None:
    assert Inner(1) == Inner(1) and Inner(1) != Inner(2)
    assert Inner(1) != Outer("n")
    assert hash(Inner(1, "q")) == hash(Inner(1, "q"))
    assert len({Inner(1), Inner(1), Inner(2)}) == 2
    assert repr(Inner(1)) == "Inner(a=1, b='x')"


def test_replace_and_asdict() -> None:
    outer = Outer("n", items=(Inner(2), Inner(3, "z")))
    assert replace(outer, name="m") == Outer("m", items=outer.items)
    assert outer.name == "n"  # unchanged
    assert asdict(outer) == {"name": "n", "inner": {"a": 1, "b": "x"},
                             "items": [{"a": 2, "b": "x"}, {"a": 3, "b": "z"}]}


