"""Hostile app specs and tree files: each is one GenError line naming the file, refused fast, never a
traceback, unbounded time or memory, or an echo of the bad value (the agent's bounded reader,
bootstrap.settings.bounded, with the limits of dockerfile_gen.input_files)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from dockerfile_gen.errors import EXIT_USER_ERROR, GenError
from dockerfile_gen.input_files import SPEC_LIMITS, TREE_LIMITS
from dockerfile_gen.specfile import load_spec
from dockerfile_gen.tree import load_image, load_tree
from tests.gen.conftest import small_tree


def laughs(levels: int) -> str:
    """A "billion laughs" document: 9**(levels-1) strings once expanded."""
    items = ['&lol0 "lol"'] + [f"&lol{n} [" + ", ".join([f"*lol{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "labels:\n  x: 1\nrun:\n" + "".join(f"  - {item}\n" for item in items)


def hostile(limits_bytes: int, depth: int, nodes: int) -> dict[str, tuple[bytes, str]]:
    """name: (content, what the one error line says)."""
    return {
        "huge": (b"name: x\n" + b"# padding\n" * (limits_bytes // 10 + 1), f"is larger than {limits_bytes >> 10} KiB"),
        "deep YAML": (b"".join(b"  " * n + b"a:\n" for n in range(depth + 2)), f"nests deeper than {depth} levels (line {depth})"),
        "deep JSON": (b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", f"nests deeper than {depth} levels"),
        "billion laughs": (laughs(12).encode(), "uses a YAML alias (*name) on line 5"),
        "many nodes": (b"packages:\n" + b"- a\n" * (nodes + 1), f"has more than {nodes} YAML nodes"),
        "long integer": (b"name: " + b"9" * 5000 + b"\n", "has an integer of 5000 digits on line 1"),
        "UTF-16": ("name: x\n".encode("utf-16"), "is UTF-16 or UTF-32; save it as UTF-8"),
        "not UTF-8": (b"name: caf\xe9\n", "is not valid UTF-8 (byte 0xe9 on line 1)"),
    }


SPECS = hostile(SPEC_LIMITS.max_bytes, SPEC_LIMITS.max_depth, SPEC_LIMITS.max_nodes)
TREES = hostile(TREE_LIMITS.max_bytes, TREE_LIMITS.max_depth, TREE_LIMITS.max_nodes)


def refused(load: object, path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(GenError) as info:
        load(str(path))  # type: ignore[operator]
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "\n" not in message and len(message) < 300 and "lol" not in message and "999999" not in message
    return message


@pytest.mark.parametrize("name", list(SPECS))
def test_hostile_spec(tmp_path: Path, name: str) -> None:
    content, words = SPECS[name]
    path = tmp_path / "app.yaml"
    path.write_bytes(content)
    message = refused(load_spec, path)
    assert message.startswith(f"{path}: {words}"), message


@pytest.mark.parametrize("name", list(TREES))
def test_hostile_tree_file(tmp_path: Path, name: str) -> None:
    content, words = TREES[name]
    path = tmp_path / "root.yaml"
    path.write_bytes(content)
    message = refused(load_image, path)
    assert message.startswith(f"{path}: {words}"), message


def test_deep_flow_collections(tmp_path: Path) -> None:
    """On one line, libyaml's own bound (1,000 levels) may answer before the reader's depth count."""
    path = tmp_path / "app.yaml"
    path.write_bytes(b"name: " + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert "nest" in refused(load_spec, path)


def test_a_spec_within_the_bounds_reads_as_before(tmp_path: Path) -> None:
    """Anchors without aliases are fine, and a JSON spec is a spec (JSON is YAML)."""
    (tmp_path / "conf.d" / "dev").mkdir(parents=True)
    (tmp_path / "conf.d" / "dev" / "app.properties").write_text("x=1\n")
    path = tmp_path / "app.yaml"
    path.write_text("name: &n demo\ntype: script\nstart: [./run.sh]\nports: [8080]\nready: {tcp: '8080'}\n")
    spec = load_spec(str(path))
    assert (spec.name, spec.ready.check("tcp")) == ("demo", 8080)
    path.write_text('{"name": "demo", "type": "script", "start": ["./run.sh"], "ports": [8080]}')
    assert load_spec(str(path)).ports == (8080,)


def test_a_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("name: demo\nports: [8080\n")
    with pytest.raises(GenError) as info:
        load_spec(str(path))
    assert str(info.value).startswith(f"{path}: not valid YAML: line 3, column 1: "), info.value


def test_hostile_files_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One `dockerfile-gen: error:` line and exit 65, for a spec and for a tree file."""
    spec = tmp_path / "app" / "app.yaml"
    spec.parent.mkdir()
    spec.write_bytes(laughs(12).encode())
    tree = Path(small_tree(tmp_path / "tree"))
    assert main(["--tree", str(tree), "-q", "app", str(spec), "-o", str(tmp_path / "out")]) == EXIT_USER_ERROR
    assert capsys.readouterr().err.splitlines() == [
        f"dockerfile-gen: error: {spec}: uses a YAML alias (*name) on line 5; "
        "aliases are not allowed in an app spec: write the value out"]
    (tree / "zz.yaml").write_bytes(TREES["deep YAML"][0])
    with pytest.raises(GenError, match=r"zz.yaml: nests deeper than 16 levels"):
        load_tree(str(tree))
    assert main(["--tree", str(tree), "-q", "app", str(spec), "-o", str(tmp_path / "out")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"dockerfile-gen: error: {tree}/zz.yaml: nests deeper than 16 levels")
