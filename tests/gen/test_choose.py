"""Base choice: every hard rule, the cost, ties, and the no-base error."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen.choose import COST, choose, explain, rank
from dockerfile_gen.errors import GenError
from dockerfile_gen.spec import AppSpec
from dockerfile_gen.tree import Tree, load_tree
from tests.gen.conftest import write_tree

JAR: dict[str, Any] = {"name": "svc", "type": "jar", "java": 17, "artifact": "app.jar"}


def names(spec: AppSpec, tree: Tree) -> list[str]:
    return [c.image.name for c in rank(spec, tree) if c.qualified]


def test_java_major_is_a_hard_rule(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    ranked = rank(write_spec(JAR), tree)
    rejected = {c.image.name: c.missing for c in ranked if not c.qualified}
    assert rejected == {"jre-11": ("java 17 (has 11)",), "root": ("java 17 (has no java)",)}


def test_a_newer_major_is_refused_without_java_max(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    """Many Java 8 and 11 apps break on 17 (javax.xml.bind removed, strong encapsulation)."""
    ranked = rank(write_spec({**JAR, "java": 11}), tree)
    rejected = {c.image.name: c.missing for c in ranked if not c.qualified}
    assert rejected["jre-17"] == ("java 11 (has 17; java_max: 17 would allow it)",)
    assert [c.image.name for c in ranked if c.qualified] == ["jre-11"]


def test_no_base_of_that_major_names_what_the_tree_lacks(tmp_path: Path, write_spec: Callable[..., AppSpec]) -> None:
    tree = load_tree(write_tree(tmp_path / "t", [
        {"name": "root", "from": "d:1", "version": "1"},
        {"name": "jre-17", "parent": "root", "version": "1", "provides": {"java": 17}},
        {"name": "jre-21", "parent": "root", "version": "1", "provides": {"java": 21}},
    ]))
    with pytest.raises(GenError) as info:
        choose(write_spec({**JAR, "java": 8}), tree)
    assert info.value.key == "java"
    assert str(info.value).split(": ", 2)[2] == (
        "no base image can serve this jar app, which needs java 8; no image in the tree provides java 8 "
        "(the tree has java 17, 21; add a base with java 8 to the tree, or set java_max in the spec if the app "
        "is known to run on a newer major); closest: jre-17 lacks java 8 (has 17; java_max: 17 would allow it); "
        "jre-21 lacks java 8 (has 21; java_max: 21 would allow it); root lacks java 8 (has no java)")
    # Nothing newer in the tree: no java_max hint, since it could not help.
    with pytest.raises(GenError, match=r"provides java 25 \(the tree has java 17, 21; add a base with java 25 to the tree\); closest"):
        choose(write_spec({**JAR, "java": 25}, name="b"), tree)


def test_java_max_allows_newer_majors_up_to_it(tmp_path: Path, write_spec: Callable[..., AppSpec]) -> None:
    tree = load_tree(write_tree(tmp_path / "t", [
        {"name": "root", "from": "d:1", "version": "1"},
        {"name": "jre-17", "parent": "root", "version": "1", "provides": {"java": 17}},
        {"name": "jre-21", "parent": "root", "version": "1", "provides": {"java": 21}},
        {"name": "jre-25", "parent": "root", "version": "1", "provides": {"java": 25}},
    ]))
    spec = write_spec({**JAR, "java": 8, "java_max": 21})
    ranked = rank(spec, tree)
    assert [c.image.name for c in ranked if c.qualified] == ["jre-17", "jre-21"], "the nearest major wins"
    assert {c.image.name: c.missing for c in ranked if not c.qualified}["jre-25"] == ("java 8 to 21 (has 25)",)
    chosen = choose(spec, tree)
    assert f"+{9 * COST['java_major']} runs java 8 code on java 17 (java_max: 21)" in chosen.reasons
    text = explain(spec, tree)
    assert text.splitlines()[0] == "svc: type jar, java 8 to 21"
    assert text.splitlines()[-1] == "note: this java 8 app is placed on java 17 (jre-17), allowed by java_max: 21 in the spec"
    # An exact match needs no note, java_max or not.
    exact = explain(write_spec({**JAR, "java": 17, "java_max": 21}, name="b"), tree)
    assert "note:" not in exact and "1  jre-17" in exact
    with pytest.raises(GenError, match=r"java: no base image can serve this jar app, which needs java 8 to 11;"):
        choose(write_spec({**JAR, "java": 8, "java_max": 11}, name="c"), tree)


def test_exact_java_beats_newer_java(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    spec = write_spec({**JAR, "java": 11, "java_max": 17})
    assert choose(spec, tree).image.name == "jre-11"
    newer = next(c for c in rank(spec, tree) if c.image.name == "jre-17")
    assert f"+{6 * COST['java_major']} runs java 11 code on java 17 (java_max: 17)" in newer.reasons


def test_war_needs_a_servlet_container(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    spec = write_spec({**JAR, "type": "war", "artifact": "app.war"})
    assert names(spec, tree) == ["tomcat"]
    assert choose(spec, tree).servlet is not None


def test_packages_in_base_cost_nothing(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    chosen = choose(write_spec({**JAR, "packages": ["fontconfig"]}), tree)
    assert chosen.image.name == "fonts"
    assert chosen.install == () and chosen.already == ("fontconfig",)


def test_missing_packages_are_installed_and_cost(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    chosen = choose(write_spec({**JAR, "packages": ["lftp", "tzdata"]}), tree)
    assert chosen.image.name == "jre-17"
    assert chosen.install == ("lftp",), "tzdata is in root already"
    assert chosen.cost == COST["package"] + COST["apt_layer"] + COST["weight"] * 2  # python3, openjdk


def test_unused_weight_prefers_the_lean_image(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    assert names(write_spec(JAR), tree) == ["jre-17", "tomcat", "fonts"]  # 3, 4 and 5 packages


def test_creating_a_user_is_a_step(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    spec = write_spec({**JAR, "user": "tomcat"})
    ranked = {c.image.name: c for c in rank(spec, tree)}
    assert ranked["jre-17"].add_user == "tomcat" and ranked["tomcat"].add_user is None
    assert ranked["jre-17"].cost == 3 * COST["weight"] + COST["user"]
    assert write_spec({**JAR, "user": "1000:1000"}, name="b") and choose(write_spec({**JAR, "user": "1000"}, name="c"), tree).add_user is None


def test_tie_goes_to_the_more_specific_image(tmp_path: Path, write_spec: Callable[..., AppSpec]) -> None:
    tree = load_tree(write_tree(tmp_path / "t", [
        {"name": "root", "from": "d:1", "version": "1"},
        {"name": "jre", "parent": "root", "version": "1", "provides": {"java": 17}, "packages": ["openjdk-17-jre-headless"]},
        {"name": "jre-tuned", "parent": "jre", "version": "1", "env": {"MALLOC_ARENA_MAX": "2"}},
    ]))
    ranked = rank(write_spec(JAR), tree)
    assert [c.image.name for c in ranked[:2]] == ["jre-tuned", "jre"] and ranked[0].cost == ranked[1].cost
    assert "tie: the more specific image wins" in explain(write_spec(JAR), tree)


def test_tie_at_equal_depth_goes_by_name(tmp_path: Path, write_spec: Callable[..., AppSpec]) -> None:
    tree = load_tree(write_tree(tmp_path / "t", [
        {"name": "root", "from": "d:1", "version": "1"},
        {"name": "zeta", "parent": "root", "version": "1", "provides": {"java": 17}},
        {"name": "alpha", "parent": "root", "version": "1", "provides": {"java": 17}},
    ]))
    assert choose(write_spec(JAR), tree).image.name == "alpha"


def test_no_base_lists_what_is_missing(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    with pytest.raises(GenError) as info:
        choose(write_spec({**JAR, "java": 21, "type": "war", "artifact": "a.war"}), tree)
    message = str(info.value)
    assert info.value.key == "java"
    assert "needs java 21 and a servlet container" in message
    assert "no image in the tree provides java 21 (the tree has java 11, 17; add a base with java 21 to the tree)" in message
    assert "tomcat lacks java 21 (has 17)" in message


def test_no_servlet_anywhere(tmp_path: Path, write_spec: Callable[..., AppSpec]) -> None:
    tree = load_tree(write_tree(tmp_path / "t", [
        {"name": "root", "from": "d:1", "version": "1"},
        {"name": "jre", "parent": "root", "version": "1", "provides": {"java": 17}},
    ]))
    with pytest.raises(GenError, match=r"type: .*no image in the tree provides a servlet container"):
        choose(write_spec({**JAR, "type": "war", "artifact": "a.war"}), tree)


def test_explain_lists_every_candidate(tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    text = explain(write_spec({**JAR, "packages": ["fontconfig"]}), tree)
    lines = text.splitlines()
    assert lines[0] == "svc: type jar, java 17, packages fontconfig"
    body = lines[2:]
    assert len(body) == 5
    assert body[0].split()[:4] == ["1", "fonts", str(choose(write_spec({**JAR, "packages": ["fontconfig"]}, name="x"), tree).cost), "chosen:"]
    assert any("root" in line and "rejected: needs java 17 (has no java)" in line for line in body)
    assert any("jre-11" in line and "rejected: needs java 17 (has 11)" in line for line in body)
    assert any("jre-17" in line and "installs 1 package(s): fontconfig" in line for line in body)


def test_real_tree_choices(real_tree: Tree, write_spec: Callable[..., AppSpec]) -> None:
    assert choose(write_spec(JAR), real_tree).image.name == "jre-17"
    assert choose(write_spec({**JAR, "packages": ["openjdk-17-jdk-headless"]}, name="b"), real_tree).image.name == "jdk-17"
    assert choose(write_spec({**JAR, "packages": ["fontconfig"]}, name="c"), real_tree).image.name == "jre-17-fonts"
    war = {**JAR, "type": "war", "artifact": "a.war"}
    assert choose(write_spec(war, name="d"), real_tree).image.name == "tomcat10"
    assert choose(write_spec({**war, "packages": ["fonts-liberation2"]}, name="e"), real_tree).image.name == "tomcat10-fonts"
    script = {"name": "job", "type": "script", "start": "python3 job.py"}
    assert choose(write_spec(script, name="f"), real_tree).image.name == "root"
    # Java 21 and 25 apps land on the trixie branch, each on its own major.
    assert choose(write_spec({**JAR, "java": 21}, name="g"), real_tree).image.name == "jre-21"
    assert choose(write_spec({**JAR, "java": 25}, name="h"), real_tree).image.name == "jre-25"
    assert choose(write_spec({**war, "java": 21}, name="i"), real_tree).image.name == "tomcat10-jre21"
    assert choose(write_spec({**JAR, "java": 17, "java_max": 25}, name="j"), real_tree).image.name == "jre-17"
    with pytest.raises(GenError, match=r"needs java 25 and a servlet container; closest: jre-25 lacks a servlet container for a WAR \(has none\); tomcat10-jre21 lacks java 25 \(has 21"):
        choose(write_spec({**war, "java": 25}, name="k"), real_tree)
    with pytest.raises(GenError, match=r"no image in the tree provides java 11 \(the tree has java 17, 21, 25;"):
        choose(write_spec({**JAR, "java": 11}, name="l"), real_tree)
