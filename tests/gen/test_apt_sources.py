"""The Debian mirror from the machine's apt sources, in both formats, and its override."""
from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockerfile_gen import apt_sources, build
from dockerfile_gen.errors import GenError
from dockerfile_gen.render import HASH_LABEL
from dockerfile_gen.tree import Tree

MIRROR = "http://mirror.invalid/debian"  # .invalid: a reserved name, never a real host
SECURITY = "http://mirror.invalid/debian-security"

DEB822 = f"""\
Types: deb deb-src
# a comment
URIs: {MIRROR}/
Suites: bookworm
  bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://other.invalid/node
Suites: nodistro
Components: main
"""
ONE_LINE = f"""\
# deb http://commented.invalid/debian bookworm main
deb-src {MIRROR} bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR} bookworm main
deb {MIRROR} bookworm-updates main non-free-firmware
deb {SECURITY} bookworm-security main
deb http://other.invalid/cloud cloud-sdk-bookworm main
"""


def etc(tmp_path: Path, files: dict[str, str], codename: str = "bookworm") -> tuple[str, str]:
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (tmp_path / "apt" / name).write_text(text)
    (tmp_path / "os-release").write_text(f'NAME="Debian GNU/Linux"\nVERSION_CODENAME={codename}\n')
    return str(tmp_path / "apt"), str(tmp_path / "os-release")


EXPECTED = f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\ndeb {SECURITY} bookworm-security main\n"


@pytest.mark.parametrize("files", [{"sources.list.d/debian.sources": DEB822}, {"sources.list": ONE_LINE}],
                         ids=["deb822", "one-line"])
def test_both_formats(tmp_path: Path, files: dict[str, str]) -> None:
    apt, release = etc(tmp_path, files)
    assert apt_sources.debian_mirror("bookworm", {}, apt, release) == MIRROR
    text = apt_sources.sources_list("bookworm", {}, apt, release)
    assert text is not None
    assert [line.split()[:3] for line in text.splitlines()] == [line.split()[:3] for line in EXPECTED.splitlines()]


def test_the_override_replaces_the_main_archive(tmp_path: Path) -> None:
    apt, release = etc(tmp_path, {"sources.list.d/debian.sources": DEB822})
    env = {"DEBIAN_MIRROR": "http://override.invalid/debian/"}
    assert apt_sources.debian_mirror("bookworm", env, apt, release) == "http://override.invalid/debian"
    assert apt_sources.sources_list("bookworm", env, apt, release) == (
        "deb http://override.invalid/debian bookworm main\ndeb http://override.invalid/debian bookworm-updates main\n"
        f"deb {SECURITY} bookworm-security main\n")


def test_a_machine_on_another_release_lends_its_mirror(tmp_path: Path) -> None:
    apt, release = etc(tmp_path, {"sources.list": ONE_LINE.replace("bookworm", "trixie")}, codename="trixie")
    assert apt_sources.sources_list("bookworm", {}, apt, release) == (
        f"deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main non-free-firmware\n"
        f"deb {SECURITY} bookworm-security main\n")


def test_no_debian_archive_says_how_to_set_one(tmp_path: Path) -> None:
    apt, release = etc(tmp_path, {"sources.list": "deb http://other.invalid/x nodistro main\n"})
    with pytest.raises(GenError, match="set DEBIAN_MIRROR"):
        apt_sources.debian_mirror("bookworm", {}, apt, release)
    assert apt_sources.sources_list("bookworm", {}, apt, release) is None


def test_the_build_mounts_them_read_only() -> None:
    argv = build.ENGINES["podman"].build_argv("t:1", "Dockerfile", "ctx", {}, (("/w/sources.list", "/etc/apt/sources.list"),))
    assert argv[-3:] == ["--volume", "/w/sources.list:/etc/apt/sources.list:ro", "ctx"]
    with pytest.raises(GenError, match="docker build cannot mount"):
        build.ENGINES["docker"].build_argv("t:1", "Dockerfile", "ctx", {}, (("a", "b"),))


def test_tree_build_mounts_the_sources_without_changing_the_hash(tree: Tree, tmp_path: Path) -> None:
    """The mirror decides where packages come from, not what the image is: same hash, and the
    sources.list is mounted (read-only) into every build, not copied into the context."""
    from tests.gen.test_build import FakePodman

    wheel = tmp_path / "agent-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("bootstrap/__init__.py", "x = 1\n")
    plain, mirrored = FakePodman(), FakePodman()
    engine = build.ENGINES["podman"]
    build.build_tree(tree, engine, "p", str(wheel), root_from={r: "localhost/debian:bookworm" for r in tree.roots}, runner=plain)
    seen: list[str] = []

    def recording(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[1] == "build":
            volume = argv[argv.index("--volume") + 1]
            seen.append(Path(volume.split(":")[0]).read_text())
            assert argv[argv.index("--volume") + 3] == f"{Path(volume.split(':')[0]).parent}/sources.list.d:/etc/apt/sources.list.d:ro"
        return mirrored(argv)

    build.build_tree(tree, engine, "p", str(wheel), root_from={r: "localhost/debian:bookworm" for r in tree.roots}, runner=recording,
                     apt_sources={root: f"deb {MIRROR} bookworm main\n" for root in tree.roots})
    assert seen == [f"deb {MIRROR} bookworm main\n"] * len(tree.order)
    assert {ref: labels[HASH_LABEL] for ref, labels in plain.images.items() if HASH_LABEL in labels} == \
        {ref: labels[HASH_LABEL] for ref, labels in mirrored.images.items() if HASH_LABEL in labels}
