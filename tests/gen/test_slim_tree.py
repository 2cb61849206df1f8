"""The slim tree: its keys (rootfs, exclude_paths, keep_paths, jlink, size_budget_mb), the root made
from the Debian mirror, the Dockerfiles with their build stages, the bytecode pruning, and sizes in
`tree show`, `tree graph` and `--explain`. Real builds: tests/container/test_slim_bases.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dockerfile_gen import build, bytecode, rootfs, sizes
from dockerfile_gen.cli import main
from dockerfile_gen.errors import GenError
from dockerfile_gen.graph import to_dot
from dockerfile_gen.render import base_layers, render_base_dockerfile
from dockerfile_gen.tree import Tree, load_tree
from tests.gen.conftest import EXAMPLES, IMAGE_TREE, NOT_BUILT, write_tree

ROOT: dict[str, Any] = {"name": "root", "rootfs": {"suite": "bookworm"}, "version": "1", "packages": ["python3"],
                        "exclude_paths": ["/usr/share/doc/*", "/usr/share/locale/*"], "keep_paths": ["/usr/share/doc/*/copyright"],
                        "size_budget_mb": 120}
JRE: dict[str, Any] = {"name": "jre-17", "parent": "root", "version": "1", "provides": {"java": 17}, "size_budget_mb": 200,
                       "jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["java.se", "jdk.localedata"], "locales": ["en", "de"]},
                       "packages": ["ca-certificates-java"]}


def slim_tree(tmp_path: Path, *extra: dict[str, Any]) -> Tree:
    return load_tree(write_tree(tmp_path / "tree", [ROOT, JRE, *extra]))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({**ROOT, "from": "d:1"}, r"root.yaml: parent: set exactly one of `parent` .*, `from` .* or `rootfs`"),
        ({**ROOT, "rootfs": {"variant": "minbase"}}, r"rootfs.suite: is required"),
        ({**ROOT, "rootfs": {"suite": "Bookworm"}}, r"rootfs.suite: 'Bookworm' is not a Debian codename"),
        ({**ROOT, "rootfs": {"suite": "bookworm", "variant": "fat"}}, r"rootfs.variant: 'fat' is not one of minbase, buildd"),
        ({**ROOT, "rootfs": {"suite": "bookworm", "mirror": "x"}}, r"rootfs.mirror: unknown key"),
        ({**ROOT, "exclude_paths": ["usr/share/doc"]}, r"exclude_paths\[0\]: 'usr/share/doc' is not an absolute path glob"),
        ({**ROOT, "keep_paths": ["/a b"]}, r"keep_paths\[0\]"),
        ({**ROOT, "size_budget_mb": 0}, r"size_budget_mb: 0 is out of range"),
        ({**ROOT, "size_budget_mb": "200MB"}, r"size_budget_mb: must be an integer"),
        ({**ROOT, "provides": {"java": 17}, "jlink": JRE["jlink"]}, r"jlink: a root carries the agent, not a runtime"),
    ],
)
def test_bad_root_keys(tmp_path: Path, image: dict[str, Any], message: str) -> None:
    with pytest.raises(GenError, match=message):
        load_tree(write_tree(tmp_path, [image]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exclude_paths": ["/usr/share/doc/*"]}, r"jre-17.yaml: exclude_paths: only a root sets it"),
        ({"provides": {}}, r"jlink: needs provides.java"),
        ({"jlink": {"modules": ["java.se"]}}, r"jlink.jdk: is required"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless"}}, r"jlink.modules: list the modules"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["java.se", "java.se"]}}, r"jlink.modules: names a module twice"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["java.se;rm"]}}, r"jlink.modules\[0\]: 'java.se;rm' is not a Java module name"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["java.se"], "locales": ["de"]}}, r"jlink.locales: needs jdk.localedata"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["jdk.localedata"], "locales": ["de,fr"]}}, r"jlink.locales\[0\]"),
        ({"jlink": {"jdk": "openjdk-17-jdk-headless", "modules": ["java.se"], "strip": True}}, r"jlink.strip: unknown key"),
    ],
)
def test_bad_jlink_keys(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(GenError, match=message):
        load_tree(write_tree(tmp_path, [ROOT, {**JRE, **change}]))


def test_runtime_is_inherited_and_budgets_are_own(tmp_path: Path) -> None:
    tree = slim_tree(tmp_path, {"name": "tomcat", "parent": "jre-17", "version": "1", "packages": ["tomcat10"]})
    assert tree.images["tomcat"].runtime == tree.images["jre-17"].image.jlink
    assert tree.images["root"].runtime is None
    assert tree.images["tomcat"].image.size_budget_mb is None and tree.images["jre-17"].image.size_budget_mb == 200


def test_rootfs_ref_is_a_function_of_the_recipe(tmp_path: Path) -> None:
    a = load_tree(write_tree(tmp_path / "a", [ROOT])).images["root"].image
    b = load_tree(write_tree(tmp_path / "b", [{**ROOT, "exclude_paths": ["/usr/share/doc/*"]}])).images["root"].image
    assert rootfs.rootfs_ref(a) == rootfs.rootfs_ref(a)
    assert rootfs.rootfs_ref(a).startswith("localhost/rootfs/debian-bookworm:minbase-")
    assert rootfs.rootfs_ref(a) != rootfs.rootfs_ref(b), "a changed recipe makes a new root filesystem"


def test_trim_follows_dpkg_path_rules(tmp_path: Path) -> None:
    for rel in ("usr/share/doc/bash/copyright", "usr/share/doc/bash/README.gz", "usr/share/locale/de/LC_MESSAGES/x.mo",
                "usr/bin/bash", "var/cache/apt/archives/a.deb", "var/cache/apt/pkgcache.bin", "var/lib/apt/lists/x_Packages"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x" * 10)
    removed = rootfs.trim(str(tmp_path), ROOT["exclude_paths"], ROOT["keep_paths"])
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["usr/bin/bash", "usr/share/doc/bash/copyright"]
    assert removed == 50
    assert not (tmp_path / "usr/share/locale/de").exists(), "emptied excluded directories go too"


class FakeEngine:
    """podman's command line for images, import, debootstrap and tar."""

    def __init__(self, images: Sequence[str] = ()) -> None:
        self.images = {ref: 100_000_000 for ref in images}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:3] == ["podman", "image", "inspect"]:
            if argv[3] in self.images:
                return subprocess.CompletedProcess(argv, 0, json.dumps([{"Id": argv[3], "Size": self.images[argv[3]], "Labels": {}}]), "")
            return subprocess.CompletedProcess(argv, 125, "", "no such image")
        if argv[0] == "debootstrap":
            os.makedirs(os.path.join(argv[3], "usr/share/doc/x"))
            os.makedirs(os.path.join(argv[3], "etc/apt"))
            Path(argv[3], "usr/share/doc/x/README").write_text("doc")
        elif argv[:2] == ["podman", "import"]:
            self.images[argv[-1]] = 1
        elif argv[0] == "tar":
            Path(argv[argv.index("-cf") + 1]).write_text("tar")
        elif argv[0] == "podman" and argv[1] == "build":
            self.images[argv[argv.index("-t") + 1]] = 2
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_build_makes_a_missing_root_filesystem_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = load_tree(write_tree(tmp_path / "tree", [ROOT]))
    image = tree.images["root"].image
    fake = FakeEngine()
    monkeypatch.setattr(rootfs.apt_sources, "debian_mirror", lambda suite: f"http://mirror.invalid/debian-{suite}")
    monkeypatch.setattr(rootfs.apt_sources, "sources_list", lambda suite: f"deb http://mirror.invalid/debian {suite}-security main\n")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(rootfs.shutil, "which", lambda name: f"/usr/sbin/{name}")
    cache = tmp_path / "cache"
    cache.mkdir()
    build.ensure_root_filesystems(tree, ["root"], build.ENGINES["podman"], {}, fake, str(cache))
    debootstrap = [c for c in fake.calls if c[0] == "debootstrap"]
    assert len(debootstrap) == 1 and debootstrap[0][1:3] == ["--variant=minbase", "bookworm"]
    assert debootstrap[0][-1] == "http://mirror.invalid/debian-bookworm", "the machine's mirror, no registry"
    assert [c[2:4] for c in fake.calls if c[0] == "chroot"] == [["apt-get", "-q"], ["env", "DEBIAN_FRONTEND=noninteractive"]], \
        "brought up to -updates and -security before it is packed"
    assert rootfs.rootfs_ref(image) in fake.images
    assert [p.name for p in cache.iterdir()] == [rootfs.rootfs_ref(image).rsplit("/", 1)[-1].replace(":", "-") + ".tar"]
    build.ensure_root_filesystems(tree, ["root"], build.ENGINES["podman"], {}, fake, str(cache))
    assert len([c for c in fake.calls if c[0] == "debootstrap"]) == 1, "an image in the store is used as it is"
    fresh = FakeEngine()
    build.ensure_root_filesystems(tree, ["root"], build.ENGINES["podman"], {}, fresh, str(cache))
    assert not [c for c in fresh.calls if c[0] == "debootstrap"] and rootfs.rootfs_ref(image) in fresh.images, "the cache is imported"
    overridden = FakeEngine()
    build.ensure_root_filesystems(tree, ["root"], build.ENGINES["podman"], {"root": "localhost/debian:bookworm"}, overridden)
    assert overridden.calls == [], "--root-from replaces the made root filesystem"


def test_missing_debootstrap_or_root_is_one_line(tmp_path: Path) -> None:
    image = load_tree(write_tree(tmp_path, [ROOT])).images["root"].image
    with pytest.raises(GenError, match=r"debootstrap is not installed.*apt-get install debootstrap \(or pass --root-from root=IMAGE\)"):
        rootfs.make_rootfs(image, "podman", FakeEngine(), which=lambda name: None)
    with pytest.raises(GenError, match=r"needs root .*run tree build as root"):
        rootfs.make_rootfs(image, "podman", FakeEngine(), which=lambda name: "/x", is_root=lambda: False)
    assert rootfs.import_argvs("docker", "t.tar", "r:1") == [["docker", "import", "t.tar", "r:1"]]
    assert [a[1] for a in rootfs.import_argvs("buildah", "t.tar", "r:1")] == ["from", "add", "commit"]


def test_root_dockerfile_has_the_agent_stage_paths_and_pruning(tmp_path: Path) -> None:
    tree = slim_tree(tmp_path)
    text = render_base_dockerfile(tree.images["root"], tree, "p")
    ref = rootfs.rootfs_ref(tree.images["root"].image)
    assert f"FROM {ref} AS agent" in text and f"\nFROM {ref}\n" in text
    assert "pip install" in text.split(f"\nFROM {ref}\n")[0], "pip runs in the agent stage only"
    final = text.split(f"\nFROM {ref}\n")[1]
    assert "'path-exclude /usr/share/doc/*'" in final and "'path-include /usr/share/doc/*/copyright'" in final
    assert final.index("path-exclude") < final.index("apt-get install"), "dpkg reads the rules before the first install"
    assert "python3 -m dockerfile_gen.bytecode /tmp/agent/site/bootstrap /usr/lib/python3 /usr/lib/python3.*" in final
    assert "/var/cache/apt/*.bin" in final
    assert "COPY --from=agent /agent/usr/local/ /usr/local/" in final
    assert render_base_dockerfile(tree.images["root"], tree, "p", {"root": "localhost/debian:bookworm"}).count("FROM localhost/debian:bookworm") == 2


def test_jlink_dockerfile_links_in_a_stage_and_installs_a_package(tmp_path: Path) -> None:
    tree = slim_tree(tmp_path)
    text = render_base_dockerfile(tree.images["jre-17"], tree, "p")
    stage, final = text.split("\nFROM p/root:1\n")
    assert "FROM p/root:1 AS jdk" in stage and "openjdk-17-jdk-headless" in stage
    assert "jlink --add-modules java.se,jdk.localedata --include-locales=en,de --strip-java-debug-attributes" in stage
    assert "-Xshare:dump" in stage, "a new CDS archive for the linked runtime"
    assert "Provides: java-runtime-headless (= 17), java2-runtime-headless, java5-runtime-headless" in stage
    assert "java17-runtime-headless' 'Conflicts: openjdk-17-jre-headless' 'Replaces: openjdk-17-jre-headless'" in stage
    mount = re.search(r"--mount=type=bind,from=jdk,source=/runtime.deb,target=(/tmp/runtime-[0-9a-f]{12}\.deb)", final)
    assert mount is not None and f"dpkg -i {mount.group(1)}" in final, final
    assert final.index("dpkg -i") < final.index("ca-certificates-java"), "ca-certificates-java runs the runtime's java"
    other = slim_tree(tmp_path / "other", {**JRE, "name": "jre-21", "provides": {"java": 21},
                                          "jlink": {**JRE["jlink"], "jdk": "openjdk-21-jdk-headless"}})
    assert mount.group(1) not in render_base_dockerfile(other.images["jre-21"], other, "p"), \
        "a layer cache keys a RUN by its text: another runtime's install RUN must differ"
    assert "openjdk" not in final.split("LABEL")[0].replace("OpenJDK", ""), "the JDK never reaches the image"
    assert base_layers(tree.images["jre-17"]) == ("the jlink runtime (2 modules), 1 package",)
    assert base_layers(tree.images["root"])[0] == "root filesystem (debootstrap minbase bookworm)"


def test_real_tree_renders_and_budgets_every_image() -> None:
    tree = load_tree(str(IMAGE_TREE))
    for name in tree.order:
        assert tree.images[name].image.size_budget_mb is not None, f"{name}: set size_budget_mb"
        render_base_dockerfile(tree.images[name], tree, "localhost/base")
    for jre in ("jre-17", "jre-21", "jre-25"):
        assert tree.images[jre].image.size_budget_mb <= 200, "issue budget: a JRE base weighs at most 200 MB"
    for tomcat in ("tomcat10", "tomcat10-jre21"):
        assert tree.images[tomcat].image.size_budget_mb <= 250


def test_bytecode_keeps_what_the_agent_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "agentpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("raise SystemExit('never imported')\n")
    (package / "core.py").write_text("import json\n\ndef later():\n    import csv\n    from email import message\n")
    names = bytecode.agent_modules(str(package), "agentpkg")
    assert {"agentpkg", "agentpkg.core", "json", "csv", "email", "email.message"} <= names
    assert "agentpkg.__main__" not in names
    monkeypatch.syspath_prepend(str(tmp_path))
    keep = bytecode.import_all(names)
    import csv
    assert csv.__cached__ in keep
    site = tmp_path / "site" / "__pycache__"
    site.mkdir(parents=True)
    (site / "used.cpython-311.pyc").write_bytes(b"x" * 3)
    (site / "unused.cpython-311.pyc").write_bytes(b"x" * 5)
    assert bytecode.prune([str(tmp_path / "site")], {str(site / "used.cpython-311.pyc")}) == (1, 5)
    assert [p.name for p in site.iterdir()] == ["used.cpython-311.pyc"]


def test_sizes_are_worded_with_the_budget() -> None:
    assert sizes.describe(182_400_000, 200, True) == "182 MB (budget 200 MB)"
    assert sizes.describe(212_000_000, 200, True) == "212 MB (budget 200 MB, OVER BUDGET)"
    assert sizes.describe(None, 200, True) == "not built here (budget 200 MB)"
    assert sizes.describe(None, 200, False) == "budget 200 MB"
    assert sizes.over_budget(212_000_000, 200) and not sizes.over_budget(None, 200)


def test_show_graph_and_explain_report_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    tree = load_tree(str(IMAGE_TREE))
    built = {name: None for name in tree.order} | {"jre-17": 150_000_000}
    monkeypatch.setattr(build, "find_engine", lambda name=None: build.ENGINES["podman"])
    monkeypatch.setattr(build, "image_sizes", lambda tree, engine, prefix: built)
    assert main(["--tree", str(IMAGE_TREE), "tree", "show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    jre = next(i for i, line in enumerate(shown) if line.startswith("  localhost/base/jre-17:"))
    assert shown[jre].endswith("150 MB (budget 200 MB)") and shown[jre + 1].strip().startswith("layers: the jlink runtime")
    assert any(line.endswith("not built here (budget 250 MB)") for line in shown)
    assert 'budget 200 MB"' in to_dot(tree) and "150 MB (budget 200 MB)" in to_dot(tree, sizes=built)
    spec = str(EXAMPLES / "hello-jar" / "app.yaml")
    assert main(["--tree", str(IMAGE_TREE), "app", spec, "--explain", NOT_BUILT]) == 0
    assert "size of jre-17: budget 200 MB\n" in capsys.readouterr().out, "no engine asked: the budget only"
    assert main(["--tree", str(IMAGE_TREE), "app", spec, "--explain", "--engine", "podman", NOT_BUILT]) == 0
    assert "size of jre-17: 150 MB (budget 200 MB)\n" in capsys.readouterr().out


def test_a_missing_wheel_package_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """After `make demo` the venv has setuptools without `wheel`: one line says what to install."""
    monkeypatch.setattr(build, "can_build_wheels", lambda: False)
    with pytest.raises(GenError, match=r"needs the Python package 'wheel', which .* lacks: run `make deps` .*or pass --wheel FILE"):
        build.build_wheel(str(IMAGE_TREE.parent), str(tmp_path))
    monkeypatch.undo()
    assert build.can_build_wheels(), f"{sys.executable} has wheel (deps/pip-gen.txt)"
