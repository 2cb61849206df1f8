"""Helpers for the generator tests: the repo's real tree and examples, and spec builders."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockerfile_gen.spec import AppSpec
from dockerfile_gen.specfile import load_spec
from dockerfile_gen.tree import Tree, load_tree
from tests.support.paths import REPO

IMAGE_TREE = REPO / "image-tree"
EXAMPLES = REPO / "examples" / "apps"
# The examples' artifacts are built by their pipelines (tests/container compiles two of them).
NOT_BUILT = "--allow-missing-artifact"
DEFAULT_CONF = {f"{env}/app.properties": f"env={env}\n" for env in ("common", "dev", "qa", "prod")}


@pytest.fixture(scope="session")
def real_tree() -> Tree:
    return load_tree(str(IMAGE_TREE))


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """The small test tree (small_tree), loaded."""
    return load_tree(small_tree(tmp_path / "tree"))


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., AppSpec]:
    """Writes app.yaml, its conf.d files (default: common/, dev/, qa/, prod/) and an empty artifact
    under tmp_path, and loads it."""

    def write(doc: dict[str, Any], conf: dict[str, str] | None = None, name: str = "app") -> AppSpec:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        if isinstance(doc.get("artifact"), str) and ".." not in doc["artifact"] and not doc["artifact"].startswith("/"):
            (directory / doc["artifact"]).parent.mkdir(parents=True, exist_ok=True)
            (directory / doc["artifact"]).touch()
        for rel, text in (DEFAULT_CONF if conf is None else conf).items():
            target = directory / "conf.d" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        path = directory / "app.yaml"
        path.write_text(yaml.safe_dump(doc))
        return load_spec(str(path))

    return write


def write_tree(directory: Path, images: list[dict[str, Any]]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for image in images:
        (directory / f"{image['name']}.yaml").write_text(yaml.safe_dump(image))
    return str(directory)


def small_tree(directory: Path) -> str:
    """root → jre-17 → {fonts, tomcat}; and jre-11 beside it. Enough for every choice rule."""
    return write_tree(directory, [
        {"name": "root", "from": "localhost/debian:bookworm", "version": "1", "packages": ["python3", "tzdata"], "provides": {"users": ["app"]}},
        {"name": "jre-11", "parent": "root", "version": "1", "packages": ["openjdk-11-jre-headless"], "provides": {"java": 11}},
        {"name": "jre-17", "parent": "root", "version": "1", "packages": ["openjdk-17-jre-headless"], "provides": {"java": 17}},
        {"name": "fonts", "parent": "jre-17", "version": "1", "packages": ["fontconfig", "fonts-dejavu-core"], "provides": {"fonts": True}},
        {"name": "tomcat", "parent": "jre-17", "version": "1", "packages": ["tomcat10"], "provides": {"servlet": "tomcat10", "users": ["tomcat"]}},
    ])


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
