"""The real tree, built from a debootstrap root: root → jre-17 → tomcat10."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.podman_engine import BASE_PREFIX, TREE_IMAGES, Engine, TreeBuild, record, tree_build

pytestmark = pytest.mark.container
PROGRESS = re.compile(r"^\[(\d)/(\d)\] (\S+): (built|unchanged) (\S+) in ([0-9.]+)s \(hash ([0-9a-f]{12})\)$", re.M)


def test_builds_parents_first_with_progress(built_tree: TreeBuild, engine: Engine) -> None:
    lines = PROGRESS.findall(built_tree.log)
    assert [m[2] for m in lines] == list(TREE_IMAGES), built_tree.log
    assert all(m[3] == "built" for m in lines), "a fresh storage has nothing to skip"
    sizes = {}
    for name in TREE_IMAGES:
        data = json.loads(engine.podman("image", "inspect", f"{BASE_PREFIX}/{name}:1.0.0").stdout)[0]
        assert data["Labels"]["io.k8s-java-bootstrap.tree-hash"].startswith(next(m[6] for m in lines if m[2] == name))
        assert data["Labels"]["org.opencontainers.image.title"] == name
        sizes[name] = round(data["Size"] / 1e6)
    record("image_sizes_mb", sizes)
    record("tree_build_seconds_per_image", {m[2]: float(m[5]) for m in lines})


def test_root_carries_the_agent_as_entrypoint(built_tree: TreeBuild, engine: Engine) -> None:
    data = json.loads(engine.podman("image", "inspect", f"{BASE_PREFIX}/root:1.0.0").stdout)[0]
    assert data["Config"]["Entrypoint"] == ["bootstrap", "run", "--"]
    version = engine.podman("run", "--rm", "--entrypoint", "bootstrap", f"{BASE_PREFIX}/root:1.0.0", "--version")
    assert version.stdout.strip()
    # Debian's python3-* libraries, not pip's: the wheel went in with --no-deps.
    libs = engine.podman("run", "--rm", "--entrypoint", "python3", f"{BASE_PREFIX}/root:1.0.0", "-c",
                         "import yaml, psutil, requests, watchdog, prometheus_client; print(yaml.__file__)")
    assert libs.stdout.startswith("/usr/lib/python3/dist-packages/")


def test_children_have_java_and_tomcat(built_tree: TreeBuild, engine: Engine) -> None:
    java = engine.podman("run", "--rm", "--entrypoint", "java", f"{BASE_PREFIX}/jre-17:1.0.0", "-version")
    assert 'version "17' in java.stderr
    tomcat = engine.podman("run", "--rm", "--entrypoint", "sh", f"{BASE_PREFIX}/tomcat10:1.0.0", "-c",
                           "test -x /usr/share/tomcat10/bin/catalina.sh && id tomcat && test ! -e /var/lib/tomcat10/webapps/ROOT")
    assert "tomcat" in tomcat.stdout


def test_rebuild_skips_unchanged_images(built_tree: TreeBuild, engine: Engine) -> None:
    again = tree_build(engine)
    lines = PROGRESS.findall(again.log)
    assert [(m[2], m[3]) for m in lines] == [(name, "unchanged") for name in TREE_IMAGES], again.log
    record("tree_build_warm_seconds", round(again.seconds, 1))


def test_buildah_engine_builds_and_skips(built_tree: TreeBuild, engine: Engine, tmp_path: Path) -> None:
    """The same build path through buildah: a one-image tree on top of the built root."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "tools.yaml").write_text(
        "name: tools\nfrom: localhost/base/root:1.0.0\nversion: '1'\nprovides: {tools: true}\nrun: ['test -x /usr/local/bin/bootstrap']\n"
    )
    argv = ("tree", "build", "--engine", "buildah")
    first = engine.run(sys.executable, "-m", "dockerfile_gen", "--tree", str(tree), *argv)
    assert re.search(r"\[1/1\] tools: built localhost/base/tools:1 in", first.stderr), first.stderr
    second = engine.run(sys.executable, "-m", "dockerfile_gen", "--tree", str(tree), *argv)
    assert re.search(r"\[1/1\] tools: unchanged", second.stderr), second.stderr
