"""`tree build` logic against a recording runner: the engine's command line is the edge we fake."""
from __future__ import annotations

import json
import logging
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockerfile_gen import build
from dockerfile_gen.errors import GenError
from dockerfile_gen.render import HASH_LABEL
from dockerfile_gen.tree import Tree


class FakePodman:
    """Remembers built images and their labels, answers inspect like podman does."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, str]] = {"localhost/debian:bookworm": {}}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[1:3] == ["image", "inspect"]:
            ref = argv[3]
            if ref not in self.images:
                return subprocess.CompletedProcess(argv, 125, "", "no such image")
            return subprocess.CompletedProcess(argv, 0, json.dumps([{"Id": f"id-{ref}-{sorted(self.images[ref].items())}", "Labels": self.images[ref]}]), "")
        if argv[1] == "build":
            tag = argv[argv.index("-t") + 1]
            labels = dict(a.split("=", 1) for a in argv[argv.index("--label") + 1::2] if "=" in a)
            self.images[tag] = labels
            return subprocess.CompletedProcess(argv, 0, "", "")
        if argv[1] == "push":
            return subprocess.CompletedProcess(argv, 0, "", "")
        raise AssertionError(argv)


@pytest.fixture
def wheel(tmp_path: Path) -> str:
    path = tmp_path / "agent-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bootstrap/__init__.py", "x = 1\n")
    return str(path)


def built(fake: FakePodman) -> list[str]:
    return [c[c.index("-t") + 1] for c in fake.calls if c[1] == "build"]


def test_parents_first_then_skip_when_unchanged(tree: Tree, wheel: str, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePodman()
    engine = build.ENGINES["podman"]
    caplog.set_level(logging.INFO, "dockerfile_gen")
    first = build.build_tree(tree, engine, "localhost/base", wheel, root_from={"root": "localhost/debian:bookworm"}, runner=fake)
    assert [r.status for r in first] == ["built"] * 5
    assert built(fake) == ["localhost/base/root:1", "localhost/base/jre-11:1", "localhost/base/jre-17:1", "localhost/base/fonts:1", "localhost/base/tomcat:1"]
    assert all(HASH_LABEL in labels for ref, labels in fake.images.items() if ref.startswith("localhost/base"))
    assert any(r.message.startswith("[5/5] tomcat: built localhost/base/tomcat:1 in ") for r in caplog.records)
    fake.calls.clear()
    second = build.build_tree(tree, engine, "localhost/base", wheel, root_from={"root": "localhost/debian:bookworm"}, runner=fake)
    assert [r.status for r in second] == ["unchanged"] * 5 and built(fake) == []


def test_a_changed_agent_rebuilds_only_the_root_and_what_depends_on_it(tree: Tree, wheel: str, tmp_path: Path) -> None:
    fake = FakePodman()
    engine = build.ENGINES["podman"]
    build.build_tree(tree, engine, "p", wheel, root_from={"root": "localhost/debian:bookworm"}, runner=fake)
    before = build.wheel_digest(wheel)
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("bootstrap/extra.py", "y = 2\n")
    assert build.wheel_digest(wheel) != before
    fake.calls.clear()
    # The fake gives a rebuilt image a new ID, so children see a new FROM.
    results = build.build_tree(tree, engine, "p", wheel, root_from={"root": "localhost/debian:bookworm"}, only=["fonts"], runner=fake)
    assert [(r.name, r.status) for r in results] == [("root", "built"), ("jre-17", "built"), ("fonts", "built")]


def test_wheel_digest_ignores_zip_timestamps(tmp_path: Path) -> None:
    paths = []
    for i, stamp in enumerate([(2020, 1, 1, 0, 0, 0), (2024, 6, 1, 12, 0, 0)]):
        path = tmp_path / f"w{i}.whl"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(zipfile.ZipInfo("a.py", stamp), "x")
        paths.append(str(path))
    assert build.wheel_digest(paths[0]) == build.wheel_digest(paths[1])


def test_push_and_errors(tree: Tree, wheel: str) -> None:
    fake = FakePodman()
    engine = build.ENGINES["podman"]
    build.build_tree(tree, engine, "p", wheel, root_from={"root": "localhost/debian:bookworm"}, only=["jre-17"], push="127.0.0.1:5000/base", tls_verify=False, runner=fake)
    pushes = [c for c in fake.calls if c[1] == "push"]
    assert pushes[-1] == ["podman", "push", "--tls-verify=false", "p/jre-17:1", "docker://127.0.0.1:5000/base/jre-17:1"]
    with pytest.raises(GenError, match=r"no image named 'nope'"):
        build.build_tree(tree, engine, "p", wheel, only=["nope"], runner=fake)
    with pytest.raises(GenError, match=r"base image localhost/debian:trixie is not available to podman"):
        build.build_tree(tree, engine, "q", wheel, root_from={"root": "localhost/debian:trixie"}, runner=fake)


def test_build_failure_shows_the_tail(tree: Tree, wheel: str) -> None:
    def failing(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[1] == "build":
            return subprocess.CompletedProcess(argv, 1, "STEP 2/5\n", "E: Unable to locate package nope\n")
        return FakePodman()(argv)

    with pytest.raises(GenError, match=r"podman build failed \(exit 1\):\nSTEP 2/5\nE: Unable to locate package nope"):
        build.build_tree(tree, build.ENGINES["podman"], "p", wheel, root_from={"root": "localhost/debian:bookworm"}, runner=failing)


def test_engine_selection() -> None:
    assert build.find_engine(None, which=lambda name: "/usr/bin/buildah" if name == "buildah" else None).name == "buildah"
    with pytest.raises(GenError, match="no container engine found"):
        build.find_engine(None, which=lambda name: None)
    with pytest.raises(GenError, match="docker is not installed"):
        build.find_engine("docker", which=lambda name: None)
    argv = build.ENGINES["buildah"].build_argv("t:1", "Dockerfile", "ctx", {"k": "v"})
    assert argv == ["buildah", "bud", "--format", "docker", "--layers", "-t", "t:1", "-f", "Dockerfile", "--label", "k=v", "ctx"]
