"""The bounded settings-file reader, the one-line error format and the strict POD_IP check."""
from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest

from bootstrap import log
from bootstrap.errors import BootstrapError
from bootstrap.settings import bounded
from bootstrap.settings.parsers import parse_ip


def read(tmp_path: Path, content: bytes) -> object:
    path = tmp_path / "bootstrap.yaml"
    path.write_bytes(content)
    return bounded.read(str(path))


def test_json_and_yaml_within_the_bounds(tmp_path: Path) -> None:
    nested: dict[str, object] = {}
    for _ in range(14):  # 16 levels with the top mapping and the innermost {}: the most allowed
        nested = {"n": nested}
    import json

    assert read(tmp_path, json.dumps({"app_name": "demo", "x": nested, "port": 8080}).encode()) == {
        "app_name": "demo", "x": nested, "port": 8080}
    assert read(tmp_path, b"\xef\xbb\xbfapp_name: demo\nready: {tcp: 8080}\nbase: &b x\n") == {
        "app_name": "demo", "ready": {"tcp": 8080}, "base": "x"}
    assert read(tmp_path, b"  \n") is None


def test_json_keeps_yaml_out_of_pid1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "yaml", raising=False)  # restored after: later tests use yaml
    assert read(tmp_path, b'{"app_name": "demo", "http_port": 8080}') == {"app_name": "demo", "http_port": 8080}
    assert "yaml" not in sys.modules


@pytest.mark.parametrize("content, message", [
    (b"[" * 17 + b"]" * 17, "nests deeper than 16"),
    (b"a:\n" + b"".join(b"  " * n + b"b:\n" for n in range(1, 17)) + b"  " * 17 + b"c: 1\n", "nests deeper than 16"),
    (b"a: &x [1]\nb: *x\n", "YAML alias"),
    (b'{"a": ' + b"1" * 33 + b"}", "integer of 33 digits"),
    (b"a: -" + b"1" * 33 + b"\n", "integer of 33 digits"),
    (b"x" * (64 * 1024 + 1), "larger than 64 KiB"),
    (b"\xfe\xff\x00a", "UTF-16"),
    (b"a: \xff\n", "not valid UTF-8 (byte 0xff on line 1)"),
    (b"a: [\n", "not valid YAML at line 2"),
])
def test_refused_with_one_message(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(BootstrapError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(tmp_path, content)


def test_a_string_with_brackets_is_not_nesting(tmp_path: Path) -> None:
    assert read(tmp_path, b'{"start": "' + b"[" * 100 + b'"}') == {"start": "[" * 100}


def test_one_line_escapes_and_cuts() -> None:
    assert log.one_line("a\nb\r\x1b[1m\x07\x7f\x85\u2028") == "a\\nb\\r\\x1b[1m\\x07\\x7f\\x85\\u2028"
    long = "HEAD" + "x" * 100_000 + "TAIL"
    cut = log.one_line(long)
    assert cut.startswith("HEAD") and cut.endswith("TAIL") and len(cut) < log.MAX_LINE + 50
    assert f"[{len(long) - 666 - 333} characters cut]" in cut
    assert log.one_line("plain: ünïcode stays") == "plain: ünïcode stays"


def valid(text: str) -> bool:
    try:
        parse_ip(text, "POD_IP")
    except BootstrapError:
        return False
    return True


def oracle(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text  # a scoped address is no pod IP


def test_pod_ip_agrees_with_the_ipaddress_module() -> None:
    """The hand-written check (no ipaddress import in PID 1) accepts exactly what ipaddress accepts."""
    rng = random.Random(10)

    def address() -> str:
        if rng.random() < 0.3:
            return ".".join(rng.choice(["0", "1", "01", "255", "256", "10", "999", ""]) for _ in range(rng.choice([3, 4, 4, 5])))
        groups = [rng.choice(["0", "1", "ff", "FFFF", "12345", "g", "", "abcd"]) for _ in range(rng.randint(1, 9))]
        if rng.random() < 0.2:
            groups[-1] = "10.0.0.7"
        text = ":".join(groups)
        if rng.random() < 0.5:
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(["::", ":", ":::"]) + text[at:]
        return text

    samples = {address() for _ in range(20_000)} | {"1:2:3", ":::", "::", "::1", "1::", "::ffff:10.0.0.7", "1.2.3.4::"}
    assert sum(map(oracle, samples)) > 500  # the generator makes plenty of valid addresses too
    wrong = sorted(s for s in samples if valid(s) != oracle(s))
    assert wrong == []
