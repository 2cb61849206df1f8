"""The YAML writer round-trips through PyYAML for every kind of string it may meet."""
from __future__ import annotations

import random
import string
from typing import Any

import pytest
import yaml

from dockerfile_gen import yamlout

TRICKY = [
    "", "yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "~", "Null", "1", "0x1f", "1e3", "1.0", ".inf",
    "-", "-c", "- a", "a: b", "a #b", "#x", "x:", "[a]", "{a}", "a,b", "*a", "&a", "!a", "|", ">", "%x", "@x", "`x`",
    "'q'", '"q"', "a\\b", "$JAVA_OPTS", "exec java $JAVA_OPTS -jar /app/a.jar", "/", "/usr/share", "http://x:8/y",
    "ünïcode", "tab\there", "2001-01-01", "0777", "+1", "1_000", ":", "?", "? a", "= x", "<<",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_round_trip(text: str) -> None:
    doc = {"k": text, "l": [text, text], "m": [{"a": text}]}
    assert yaml.safe_load(yamlout.dump(doc)) == doc


def test_random_documents_round_trip() -> None:
    rng = random.Random(4)
    alphabet = string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "") + "äé€"

    def value(depth: int) -> Any:
        pick = rng.random()
        if depth > 2 or pick < 0.5:
            return rng.choice([rng.randint(-5, 10**6), True, False, "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))])
        if pick < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 3))}

    for _ in range(500):
        doc = {f"key{i}": value(0) for i in range(4)}
        assert yaml.safe_load(yamlout.dump(doc)) == doc


def test_header_and_layout() -> None:
    text = yamlout.dump({"a": {"b": [1, 2]}, "c": [{"d": "e", "f": "g"}]}, "line one\nline two")
    assert text == "# line one\n# line two\na:\n  b: [1, 2]\nc:\n  - d: e\n    f: g\n"
