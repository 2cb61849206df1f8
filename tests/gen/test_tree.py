"""Tree loading and resolving: errors with a clear message, merge rules, order."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.errors import GenError
from dockerfile_gen.tree import load_tree, root_overrides
from tests.gen.conftest import IMAGE_TREE, small_tree, write_tree

ROOT: dict[str, Any] = {"name": "root", "from": "localhost/debian:bookworm", "version": "1", "packages": ["python3"]}


def test_cycle_is_named(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, [ROOT, {"name": "a", "parent": "c", "version": "1"}, {"name": "b", "parent": "a", "version": "1"}, {"name": "c", "parent": "b", "version": "1"}])
    with pytest.raises(GenError, match=r"a.yaml: parent: the tree has a cycle: a -> c -> b -> a"):
        load_tree(tree)


def test_self_parent_is_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(GenError, match=r"cycle: a -> a"):
        load_tree(write_tree(tmp_path, [ROOT, {"name": "a", "parent": "a", "version": "1"}]))


def test_missing_parent_lists_known_names(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, [ROOT, {"name": "jre", "parent": "rooot", "version": "1"}])
    with pytest.raises(GenError, match=r"jre.yaml: parent: no image named 'rooot' in the tree \(known: jre, root\)"):
        load_tree(tree)


def test_duplicate_name_names_both_files(tmp_path: Path) -> None:
    write_tree(tmp_path, [ROOT])
    (tmp_path / "root-copy.yaml").write_text((tmp_path / "root.yaml").read_text())
    with pytest.raises(GenError, match=r"root.yaml: name: duplicate image name 'root': also defined in .*root-copy.yaml"):
        load_tree(str(tmp_path))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"name": "x", "version": "1"}, r"parent: set exactly one of"),
        ({"name": "x", "version": "1", "parent": "root", "from": "a:b"}, r"parent: set exactly one of"),
        ({"name": "x", "parent": "root"}, r"version: is required"),
        ({"name": "x", "parent": "root", "version": "latest"}, r"version: must not be 'latest'"),
        ({"name": "x", "from": "debian", "version": "1"}, r"from: 'debian' must be an image reference with an explicit tag"),
        ({"name": "x", "from": "debian:latest", "version": "1"}, r"from: 'debian:latest': pin a tag"),
        ({"name": "x", "parent": "root", "version": "1", "provides": {"java": 9}}, r"provides.java: 9 is not one of"),
        ({"name": "x", "parent": "root", "version": "1", "provides": {"servlet": "jetty12"}}, r"provides.servlet: 'jetty12' is not a known servlet container"),
        ({"name": "x", "parent": "root", "version": "1", "packages": ["a b"]}, r"packages\[0\]"),
        ({"name": "x", "parent": "root", "version": "1", "env": {"A-B": "1"}}, r"env.A-B"),
        ({"name": "x", "parent": "root", "version": "1", "run": ["echo a\necho b"]}, r"run\[0\]: must not contain newlines"),
        ({"name": "x", "parent": "root", "version": "1", "size": 3}, r"size: unknown key"),
        ({"name": "X", "parent": "root", "version": "1"}, r"name: 'X' is not an image name"),
    ],
)
def test_bad_image_files(tmp_path: Path, image: dict[str, Any], message: str) -> None:
    with pytest.raises(GenError, match=message):
        load_tree(write_tree(tmp_path, [ROOT, image]))


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(GenError, match="holds no"):
        load_tree(str(tmp_path))
    with pytest.raises(GenError, match="does not exist"):
        load_tree(str(tmp_path / "nope"))


def test_merge_root_to_leaf(tmp_path: Path) -> None:
    tree = load_tree(write_tree(tmp_path, [
        {**ROOT, "env": {"A": "root", "B": "root"}, "provides": {"os": "debian", "users": ["app"]}},
        {"name": "mid", "parent": "root", "version": "1", "packages": ["python3", "curl"], "env": {"B": "mid"}, "provides": {"java": 17}},
        {"name": "leaf", "parent": "mid", "version": "2", "packages": ["zip", "curl"], "provides": {"java": 21, "users": ["svc"]}, "run": ["true"]},
    ]))
    leaf = tree.images["leaf"]
    assert leaf.chain == ("root", "mid", "leaf")
    assert leaf.packages == {"python3", "curl", "zip"}
    assert leaf.own_packages == ("zip",), "a package an ancestor has is not installed again"
    assert tree.images["mid"].own_packages == ("curl",)
    assert dict(leaf.env) == {"A": "root", "B": "mid"}
    assert leaf.provides == {"os": "debian", "java": 21}
    assert leaf.users == {"app", "svc"}
    assert tree.order == ("root", "mid", "leaf")
    assert tree.ref("leaf", "reg/base") == "reg/base/leaf:2"


def test_order_is_parents_first_then_by_name(tmp_path: Path) -> None:
    tree = load_tree(small_tree(tmp_path))
    assert tree.order == ("root", "jre-11", "jre-17", "fonts", "tomcat")
    assert tree.children("jre-17") == ("fonts", "tomcat")


def test_real_tree() -> None:
    tree = load_tree(str(IMAGE_TREE))
    assert tree.roots == ("root", "root-trixie")
    assert {"root", "jre-17", "jdk-17", "jre-17-fonts", "tomcat10", "root-trixie", "jre-21", "jre-25", "tomcat10-jre21"} <= set(tree.order)
    # Bookworm ships OpenJDK 17 only, trixie 21 and 25: each JVM sits on the root that has it.
    by_root = {root: sorted({tree.images[n].java for n in tree.order if tree.images[n].chain[0] == root} - {None}) for root in tree.roots}
    assert by_root == {"root": [17], "root-trixie": [21, 25]}
    for name in tree.order:
        image = tree.images[name]
        assert image.image.version != "latest"
        if image.java is not None:  # the runtime is linked from the Debian JDK of the image's major
            assert image.runtime is not None and image.runtime.jdk == f"openjdk-{image.java}-jdk-headless", name
    assert tree.images["tomcat10"].servlet == tree.images["tomcat10-jre21"].servlet == "tomcat10"
    assert (tree.images["tomcat10"].java, tree.images["tomcat10-jre21"].java) == (17, 21)
    assert {"python3-yaml", "python3-psutil", "python3-requests", "python3-watchdog", "python3-prometheus-client", "tzdata", "ca-certificates", "procps"} <= tree.images["root"].packages


def test_both_roots_carry_the_same_agent() -> None:
    """The trixie root repeats the bookworm root's packages, env, users and steps; only the OS differs.
    An app must not behave differently because its Java major moved it to the other root."""
    tree = load_tree(str(IMAGE_TREE))
    bookworm, trixie = tree.images["root"], tree.images["root-trixie"]
    assert bookworm.packages == trixie.packages
    assert bookworm.env == trixie.env and bookworm.users == trixie.users
    assert bookworm.image.run == trixie.image.run
    assert (bookworm.provides["os"], trixie.provides["os"]) == ("debian-12", "debian-13")


def test_root_overrides(tmp_path: Path) -> None:
    tree = load_tree(write_tree(tmp_path, [
        {"name": "a", "from": "d:12", "version": "1"},
        {"name": "b", "from": "d:13", "version": "1"},
        {"name": "a-child", "parent": "a", "version": "1"},
    ]))
    assert tree.roots == ("a", "b")
    assert root_overrides(tree, ["a=localhost/d:12", "b=localhost/d:13"]) == {"a": "localhost/d:12", "b": "localhost/d:13"}
    # A bare IMAGE is fine when the images in question come from one root.
    assert root_overrides(tree, ["localhost/d:12"], ["a-child"]) == {"a": "localhost/d:12"}
    for values, images, message in (
        (["localhost/d:12"], [], r"'localhost/d:12' names no root, and the images come from 2 roots \(a, b\): write ROOT=IMAGE"),
        (["c=localhost/d:1"], [], r"'c' is not a root of the tree \(roots: a, b\)"),
        (["a-child=localhost/d:1"], [], r"'a-child' is not a root"),
        (["a=x:1", "a=y:1"], [], r"root 'a' is given twice"),
        (["a=localhost/d"], [], r"--root-from: a: 'localhost/d' must be an image reference with an explicit tag"),
        (["a=d:1;reboot"], [], r"must be an image reference"),
    ):
        with pytest.raises(GenError, match=message):
            root_overrides(tree, values, images)
