"""Config links, planned then applied on a real tree in tmp_path."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bootstrap.errors import EX_CONFIG, BootstrapError
from bootstrap.pid1 import configs
from bootstrap.pid1.actions import Action, Planner, apply
from bootstrap.settings import resolve
from bootstrap.settings.table import Settings
from tests.support.apptree import write_file


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "app"
    src = home / "conf.d"
    write_file(src / "common" / "logback.xml", "common logback")
    write_file(src / "common" / "app.properties", "common props")
    write_file(src / "common" / "shared" / "a.txt", "common a")
    write_file(src / "dev" / "app.properties", "dev props")
    write_file(src / "dev" / "only-dev.txt", "dev only")
    write_file(src / "dev" / "shared" / "b.txt", "dev b")
    write_file(src / "dev" / "deep" / "er" / "c.txt", "dev c")
    write_file(src / "prod" / "app.properties", "prod props")
    write_file(src / "prod" / "shared" / "b.txt", "prod b")
    write_file(src / "prod" / "server.xml", "prod server")
    write_file(src / "dev" / "server.xml", "dev server")
    return home


def load(home: Path, env: str = "dev", yaml: str = "") -> Settings:
    config = home.parent / "bootstrap.yaml"
    config.write_text(yaml)
    return resolve.load({"APP_NAME": "orders", "APP_ENV": env, "APP_HOME": str(home),
                          "BOOTSTRAP_CONFIG": str(config)})


def plan(s: Settings) -> list[Action]:
    planner = Planner()
    configs.plan(s, planner)
    return planner.actions


def setup(home: Path, env: str = "dev", yaml: str = "") -> list[Action]:
    actions = plan(load(home, env, yaml))
    apply(actions)
    return actions


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry below root: its kind and its link destination or file content."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                tree[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                tree[rel] = ("dir", "")
            else:
                tree[rel] = ("file", path.read_text())
    return tree


def links_in(conf: Path) -> dict[str, str]:
    return {k: v for k, (kind, v) in snapshot(conf).items() if kind == "link"}


def test_every_file_linked_env_wins(home: Path) -> None:
    setup(home)
    src, conf = home / "conf.d", home / "conf"
    assert links_in(conf) == {
        "logback.xml": f"{src}/common/logback.xml",
        "app.properties": f"{src}/dev/app.properties",
        "only-dev.txt": f"{src}/dev/only-dev.txt",
        "server.xml": f"{src}/dev/server.xml",
        "shared/a.txt": f"{src}/common/shared/a.txt",
        "shared/b.txt": f"{src}/dev/shared/b.txt",
        "deep/er/c.txt": f"{src}/dev/deep/er/c.txt",
    }
    assert (conf / "app.properties").read_text() == "dev props"


def test_links_are_absolute_and_subdirectories_real(home: Path) -> None:
    setup(home)
    conf = home / "conf"
    for dest in links_in(conf).values():
        assert os.path.isabs(dest)
    for sub in ("shared", "deep", "deep/er"):
        assert (conf / sub).is_dir() and not (conf / sub).is_symlink()


def test_no_common_dir_is_fine(tmp_path: Path) -> None:
    home = tmp_path / "app"
    write_file(home / "conf.d" / "qa" / "x.conf", "x")
    setup(home, "QA")
    assert links_in(home / "conf") == {"x.conf": f"{home}/conf.d/qa/x.conf"}


def test_second_plan_is_empty_and_tree_unchanged(home: Path) -> None:
    setup(home)
    before = snapshot(home)
    assert plan(load(home)) == []
    apply(plan(load(home)))
    assert snapshot(home) == before


def test_switching_env_replaces_stale_links_and_removes_missing(home: Path) -> None:
    setup(home, "dev")
    conf = home / "conf"
    inode_dir = (conf / "shared").stat().st_ino
    actions = setup(home, "PRODUCTION")
    src = home / "conf.d"
    assert links_in(conf) == {
        "logback.xml": f"{src}/common/logback.xml",
        "app.properties": f"{src}/prod/app.properties",
        "server.xml": f"{src}/prod/server.xml",
        "shared/a.txt": f"{src}/common/shared/a.txt",
        "shared/b.txt": f"{src}/prod/shared/b.txt",
    }
    # dev-only files must not be readable from conf/ in prod
    assert not os.path.lexists(conf / "only-dev.txt")
    assert not os.path.lexists(conf / "deep" / "er" / "c.txt")
    # a replaced link is swapped in place (temp link + rename), never moved aside
    kinds = {(a.kind, os.path.relpath(a.path, conf)) for a in actions}
    assert ("link", "app.properties") in kinds
    assert ("unlink-stale", "only-dev.txt") in kinds
    assert not any(a.kind == "move-aside" for a in actions)
    assert not [p for p in os.listdir(conf) if ".orig" in p or "bootstrap-" in p]
    assert (conf / "shared").stat().st_ino == inode_dir
    assert plan(load(home, "prod")) == []


def test_stale_link_replacement_is_atomic_rename(home: Path) -> None:
    """The swap is a rename over the old link: the path never disappears, even for an instant.
    Checked by the inode of the new link and the absence of any leftover temporary link."""
    setup(home, "dev")
    conf = home / "conf"
    actions = plan(load(home, "prod"))
    link = next(a for a in actions if a.kind == "link" and a.path == str(conf / "app.properties"))
    apply([link])
    assert os.readlink(conf / "app.properties") == f"{home}/conf.d/prod/app.properties"
    assert not [p for p in os.listdir(conf) if p.startswith(".")]


def test_file_in_the_way_moved_aside_with_content(home: Path) -> None:
    conf = home / "conf"
    write_file(conf / "app.properties", "hand edited")
    write_file(conf / "shared" / "b.txt", "image shipped")
    setup(home)
    assert (conf / "app.properties.orig").read_text() == "hand edited"
    assert (conf / "shared" / "b.txt.orig").read_text() == "image shipped"
    assert os.readlink(conf / "app.properties") == f"{home}/conf.d/dev/app.properties"
    assert plan(load(home)) == []


def test_orig_taken_uses_orig_n(home: Path) -> None:
    conf = home / "conf"
    write_file(conf / "app.properties", "third")
    write_file(conf / "app.properties.orig", "first")
    write_file(conf / "app.properties.orig.1", "second")
    setup(home)
    assert (conf / "app.properties.orig").read_text() == "first"
    assert (conf / "app.properties.orig.1").read_text() == "second"
    assert (conf / "app.properties.orig.2").read_text() == "third"
    assert (conf / "app.properties").is_symlink()


def test_directory_in_the_way_moved_aside_with_files(home: Path) -> None:
    conf = home / "conf"
    write_file(conf / "server.xml" / "inner.txt", "inner")
    setup(home)
    assert (conf / "server.xml.orig" / "inner.txt").read_text() == "inner"
    assert os.readlink(conf / "server.xml") == f"{home}/conf.d/dev/server.xml"


def test_file_where_a_directory_must_be(home: Path) -> None:
    conf = home / "conf"
    write_file(conf / "shared", "a file, not a dir")
    setup(home)
    assert (conf / "shared.orig").read_text() == "a file, not a dir"
    assert (conf / "shared").is_dir() and (conf / "shared" / "b.txt").is_symlink()


def test_foreign_link_moved_aside_not_replaced(home: Path, tmp_path: Path) -> None:
    """A link to something outside APP_HOME was not made by us: it is kept as NAME.orig."""
    conf = home / "conf"
    conf.mkdir()
    outside = write_file(tmp_path / "outside.properties", "outside")
    os.symlink(outside, conf / "app.properties")
    setup(home)
    assert os.readlink(conf / "app.properties.orig") == str(outside)
    assert os.readlink(conf / "app.properties") == f"{home}/conf.d/dev/app.properties"


def test_non_config_files_in_conf_are_left_alone(home: Path, tmp_path: Path) -> None:
    conf = home / "conf"
    write_file(conf / "local.txt", "mine")
    outside = write_file(tmp_path / "elsewhere.txt", "x")
    os.symlink(outside, conf / "extra-link")
    setup(home)
    assert (conf / "local.txt").read_text() == "mine"
    assert os.readlink(conf / "extra-link") == str(outside)


def test_yaml_links_with_placeholders(home: Path, tmp_path: Path) -> None:
    target_dir = tmp_path / "usr" / "share" / "tomcat10" / "conf"
    write_file(target_dir / "server.xml", "packaged server.xml")
    write_file(home / "conf.d" / "dev" / "orders.ctx", "ctx")
    yaml = (f'links:\n'
            f'  - {{source: "conf.d/{{env}}/server.xml", target: "{target_dir}/server.xml"}}\n'
            f'  - {{source: "conf.d/{{env}}/{{app}}.ctx", target: "ctx/{{app}}-{{env}}.xml"}}\n')
    setup(home, "development", yaml)
    assert os.readlink(target_dir / "server.xml") == f"{home}/conf.d/dev/server.xml"
    assert (target_dir / "server.xml.orig").read_text() == "packaged server.xml"
    assert os.readlink(home / "ctx" / "orders-dev.xml") == f"{home}/conf.d/dev/orders.ctx"
    assert plan(load(home, "dev", yaml)) == []
    # switching environment swaps the extra link too
    setup(home, "prod", yaml.replace("{app}.ctx", "server.xml"))
    assert os.readlink(target_dir / "server.xml") == f"{home}/conf.d/prod/server.xml"
    assert not (target_dir / "server.xml.orig.1").exists()


@pytest.mark.parametrize("source", [
    "../outside.txt",
    "conf.d/../../outside.txt",
    "conf.d/{env}/../../../outside.txt",
    "/etc/passwd",
    "{app}/../../outside.txt",
    ".",
])
def test_links_source_escape_refused(home: Path, tmp_path: Path, source: str) -> None:
    write_file(tmp_path / "outside.txt", "secret")
    yaml = f'links:\n  - {{source: "{source}", target: "conf/x"}}\n'
    resolved = load(home, "dev", yaml)
    before = snapshot(tmp_path)
    with pytest.raises(BootstrapError) as info:
        plan(resolved)
    assert info.value.code == EX_CONFIG
    assert "links[0].source" in str(info.value) and "APP_HOME" in str(info.value)
    assert snapshot(tmp_path) == before


def test_links_source_through_a_symlink_out_of_app_home_refused(home: Path, tmp_path: Path) -> None:
    write_file(tmp_path / "outside" / "secret.xml", "secret")
    os.symlink(tmp_path / "outside", home / "escape")
    yaml = 'links:\n  - {source: "escape/secret.xml", target: "conf/x"}\n'
    with pytest.raises(BootstrapError) as info:
        plan(load(home, "dev", yaml))
    assert "links[0].source" in str(info.value) and "APP_HOME" in str(info.value)


def test_links_source_missing(home: Path) -> None:
    yaml = 'links:\n  - {source: "conf.d/{env}/nope.xml", target: "conf/nope.xml"}\n'
    with pytest.raises(BootstrapError) as info:
        plan(load(home, "dev", yaml))
    assert "links[0].source" in str(info.value) and "does not exist" in str(info.value)


@pytest.mark.parametrize("field", ["source", "target"])
def test_links_unknown_placeholder(home: Path, field: str) -> None:
    link = {"source": "conf.d/{env}/server.xml", "target": "conf/s.xml"}
    link[field] = link[field].replace(".xml", "-{pod}.xml")
    yaml = f'links:\n  - {{source: "{link["source"]}", target: "{link["target"]}"}}\n'
    with pytest.raises(BootstrapError) as info:
        plan(load(home, "dev", yaml))
    assert info.value.code == EX_CONFIG and f"links[0].{field}" in str(info.value) and "{pod}" in str(info.value)


def test_plan_changes_nothing(home: Path, tmp_path: Path) -> None:
    write_file(home / "conf" / "app.properties", "in the way")
    resolved = load(home)
    before = snapshot(tmp_path)
    actions = plan(resolved)
    assert actions
    assert snapshot(tmp_path) == before


def test_symlinked_subdirectory_is_replaced_and_source_untouched(home: Path) -> None:
    """A link standing where a subdirectory belongs (e.g. conf/shared -> conf.d/dev/shared from an
    older image) must not be written through: that would replace the config source's own files."""
    conf = home / "conf"
    conf.mkdir()
    os.symlink(home / "conf.d" / "dev" / "shared", conf / "shared")
    source_before = snapshot(home / "conf.d")
    setup(home)
    assert snapshot(home / "conf.d") == source_before
    assert (conf / "shared").is_dir() and not (conf / "shared").is_symlink()
    assert os.readlink(conf / "shared" / "b.txt") == f"{home}/conf.d/dev/shared/b.txt"
    assert plan(load(home)) == []


def test_foreign_symlinked_subdirectory_moved_aside(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_file(elsewhere / "b.txt", "not ours")
    conf = home / "conf"
    conf.mkdir()
    os.symlink(elsewhere, conf / "shared")
    setup(home)
    assert os.readlink(conf / "shared.orig") == str(elsewhere)
    assert snapshot(elsewhere) == {"b.txt": ("file", "not ours")}
    assert (conf / "shared" / "b.txt").is_symlink()


def test_stale_file_link_where_new_env_needs_a_directory(tmp_path: Path) -> None:
    """dev ships conf/sub as a file, prod as a directory: the dev link goes, no NAME.orig is left,
    and the next run is a no-op."""
    home = tmp_path / "app"
    write_file(home / "conf.d" / "dev" / "sub", "dev file")
    write_file(home / "conf.d" / "prod" / "sub" / "x", "prod x")
    setup(home, "dev")
    setup(home, "prod")
    assert links_in(home / "conf") == {"sub/x": f"{home}/conf.d/prod/sub/x"}
    assert not os.path.lexists(home / "conf" / "sub.orig")
    assert plan(load(home, "prod")) == []


@pytest.mark.parametrize(("common", "env", "expected"), [
    ({"a": "c"}, {"a/b": "e"}, {"a/b": "env"}),          # the environment's directory wins over a file
    ({"a/b": "c", "a/x": "c"}, {"a": "e"}, {"a": "env"}),  # the environment's file wins over a directory
    ({"a/b": "c"}, {"a/d": "e"}, {"a/b": "common", "a/d": "env"}),  # the same directory merges
])
def test_environment_wins_file_against_directory(tmp_path: Path, common: dict[str, str], env: dict[str, str],
                                                 expected: dict[str, str]) -> None:
    home = tmp_path / "app"
    for layer, files in (("common", common), ("dev", env)):
        for rel, text in files.items():
            write_file(home / "conf.d" / layer / rel, text)
    setup(home, "dev")
    links = {str(p.relative_to(home / "conf")): os.readlink(p) for p in (home / "conf").rglob("*") if p.is_symlink()}
    assert {rel: target.split("/conf.d/")[1].split("/")[0] for rel, target in links.items()} == \
        {rel: "dev" if layer == "env" else "common" for rel, layer in expected.items()}


def test_symlinked_directory_in_a_layer_is_linked_whole(tmp_path: Path) -> None:
    home = tmp_path / "app"
    write_file(home / "conf.d" / "team-certs" / "ca.pem", "ca")
    (home / "conf.d" / "dev").mkdir(parents=True)
    os.symlink("../team-certs", home / "conf.d" / "dev" / "certs")
    os.symlink(".", home / "conf.d" / "dev" / "loop")  # a cycle must not hang the walk
    setup(home, "dev")
    assert (home / "conf" / "certs" / "ca.pem").read_text() == "ca"
    assert os.readlink(home / "conf" / "certs") == str(home / "conf.d" / "dev" / "certs")
    assert plan(load(home, "dev")) == []
