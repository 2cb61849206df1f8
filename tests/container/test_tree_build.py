"""The real tree, built from two debootstrap roots: bookworm (root → jre-17 → tomcat10) and trixie
(root-trixie → jre-21 → tomcat10-jre21, and jre-25)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.podman_engine import BASE_PREFIX, TREE_IMAGES, Engine, TreeBuild, record, tree_build

pytestmark = pytest.mark.container
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (\S+): (built|unchanged) (\S+) in ([0-9.]+)s \(hash ([0-9a-f]{12})\)$", re.M)


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


@pytest.mark.parametrize(("root", "os_id", "python"), [("root", "12", "3.11"), ("root-trixie", "13", "3.13")])
def test_root_carries_the_agent_as_entrypoint(built_tree: TreeBuild, engine: Engine, root: str, os_id: str, python: str) -> None:
    image = f"{BASE_PREFIX}/{root}:1.0.0"
    data = json.loads(engine.podman("image", "inspect", image).stdout)[0]
    assert data["Config"]["Entrypoint"] == ["bootstrap", "run", "--"]
    version = engine.podman("run", "--rm", "--entrypoint", "bootstrap", image, "--version")
    assert version.stdout.strip()
    # Debian's python3-* libraries, not pip's: the wheel went in with --no-deps. The agent runs on
    # the root's own python3 (3.11 on bookworm, 3.13 on trixie).
    libs = engine.podman("run", "--rm", "--entrypoint", "sh", image, "-c",
                         ". /etc/os-release && echo $VERSION_ID && python3 -c 'import sys, yaml, psutil, requests, watchdog, "
                         "prometheus_client, bootstrap.cli; print(\"%d.%d\" % sys.version_info[:2]); print(yaml.__file__)'")
    assert libs.stdout.split() == [os_id, python, "/usr/lib/python3/dist-packages/yaml/__init__.py"], libs.stdout


@pytest.mark.parametrize(("jre", "major"), [("jre-17", 17), ("jre-21", 21), ("jre-25", 25)])
def test_each_jre_has_exactly_its_major(built_tree: TreeBuild, engine: Engine, jre: str, major: int) -> None:
    java = engine.podman("run", "--rm", "--entrypoint", "sh", f"{BASE_PREFIX}/{jre}:1.0.0", "-c",
                         "java -version 2>&1; find /usr/lib/jvm -mindepth 1 -maxdepth 1 -type d; ls /var/cache/apt/archives")
    assert f'version "{major}.' in java.stdout, java.stdout
    jvms = {word for word in java.stdout.split() if word.startswith("/usr/lib/jvm/")}  # real directories, not the java-1.N links
    assert jvms == {f"/usr/lib/jvm/java-{major}-openjdk-amd64"}, "one JVM per base: no second major pulled in by a dependency"
    assert ".deb" not in java.stdout, "apt's downloads are removed in the layer that made them"


@pytest.mark.parametrize(("image", "major"), [("tomcat10", 17), ("tomcat10-jre21", 21)])
def test_tomcat_runs_on_its_java(built_tree: TreeBuild, engine: Engine, image: str, major: int) -> None:
    tomcat = engine.podman("run", "--rm", "--entrypoint", "sh", f"{BASE_PREFIX}/{image}:1.0.0", "-c",
                           "test -x /usr/share/tomcat10/bin/catalina.sh && id tomcat && test ! -e /var/lib/tomcat10/webapps/ROOT"
                           " && /usr/share/tomcat10/bin/version.sh")
    assert "tomcat" in tomcat.stdout
    assert re.search(r"Server number:\s+10\.1\.", tomcat.stdout), tomcat.stdout
    assert re.search(rf"JVM Version:\s+{major}\.", tomcat.stdout), tomcat.stdout


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
