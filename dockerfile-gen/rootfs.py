"""A root's filesystem made from the Debian mirror, for a root with `rootfs` and no --root-from.

`tree build` runs `debootstrap --variant=VARIANT SUITE DIR MIRROR` with the mirror of this
machine's apt sources (apt_sources.py), leaves out the root's `exclude_paths` (but not its
`keep_paths`) and apt's downloads and lists, and imports the directory as a one-layer image. No
registry is involved, so an offline build network with a Debian mirror needs nothing else.

The image's tag is a hash of the recipe (suite, variant, paths), so `tree render` writes the same
FROM that `tree build` makes, and a changed recipe makes a new root filesystem. An image already in
the engine's store, or a tarball in the cache directory (`--rootfs-cache`), is used as it is.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from dockerfile_gen import apt_sources
from dockerfile_gen.errors import GenError
from dockerfile_gen.tree import BaseImage

log = logging.getLogger("dockerfile_gen")

RECIPE_VERSION = "3"  # bump when the way a root filesystem is made changes
REPOSITORY = "localhost/rootfs"
# apt's downloads and package lists: build leftovers, never part of an image.
LEFTOVERS = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*", "var/lib/dpkg/*-old",
             "var/cache/debconf/*-old")
DEBOOTSTRAP_TIMEOUT = 1800

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def rootfs_ref(image: BaseImage) -> str:
    """The image reference of a root's made filesystem: a function of its recipe only."""
    assert image.rootfs is not None
    recipe = [RECIPE_VERSION, image.rootfs.suite, image.rootfs.variant, list(image.exclude_paths), list(image.keep_paths)]
    digest = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    return f"{REPOSITORY}/debian-{image.rootfs.suite}:{image.rootfs.variant}-{digest}"


def excluded(path: str, exclude: Sequence[str], keep: Sequence[str]) -> bool:
    """dpkg's rule as the root writes it (path-exclude lines, then path-include lines): excluded
    unless a keep pattern matches too; `*` spans `/`, as in dpkg's fnmatch."""
    return any(fnmatch.fnmatchcase(path, p) for p in exclude) and not any(fnmatch.fnmatchcase(path, p) for p in keep)


def trim(root: str, exclude: Sequence[str], keep: Sequence[str]) -> int:
    """Removes what dpkg would not have unpacked, and apt's leftovers; returns the bytes removed."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        rel_dir = "/" + os.path.relpath(dirpath, root).lstrip(".").lstrip("/")
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.join(rel_dir, name)
            if excluded(rel, exclude, keep) or any(fnmatch.fnmatchcase(rel.lstrip("/"), p) for p in LEFTOVERS):
                removed += os.lstat(path).st_size
                os.unlink(path)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path) and not os.listdir(path) and excluded(os.path.join(rel_dir, name) + "/x", exclude, keep):
                os.rmdir(path)
    return removed


def import_argvs(engine: str, tarball: str, ref: str) -> list[list[str]]:
    """The commands that import a root filesystem tarball as a one-layer image."""
    if engine == "docker":
        return [["docker", "import", tarball, ref]]
    if engine == "buildah":
        work = "rootfs-" + hashlib.sha256(ref.encode()).hexdigest()[:12]
        return [["buildah", "from", "--name", work, "scratch"], ["buildah", "add", work, tarball, "/"],
                ["buildah", "commit", "--rm", work, ref]]
    return [[engine, "import", "--quiet", tarball, ref]]


def make_rootfs(image: BaseImage, engine: str, runner: Runner, cache: str | None = None,
                which: Callable[[str], str | None] = shutil.which, is_root: Callable[[], bool] = lambda: os.geteuid() == 0) -> str:
    """Makes (or finds in the cache) the root's filesystem and imports it; returns its reference."""
    assert image.rootfs is not None
    ref = rootfs_ref(image)
    cached = os.path.join(cache, ref.rsplit("/", 1)[-1].replace(":", "-") + ".tar") if cache else None
    if cached and os.path.isfile(cached):
        log.info("%s: importing %s from %s", image.name, ref, cached)
        _import(engine, cached, ref, runner, image)
        return ref
    _require_tools(image, which, is_root)
    mirror = apt_sources.debian_mirror(image.rootfs.suite)
    started = time.monotonic()
    log.info("%s: making %s: debootstrap --variant=%s %s from %s", image.name, ref, image.rootfs.variant, image.rootfs.suite, mirror)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache or os.environ.get("TMPDIR") or "/var/tmp") as work:
        root = os.path.join(work, "root")
        result = runner(["debootstrap", f"--variant={image.rootfs.variant}", image.rootfs.suite, root, mirror])
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise GenError(f"debootstrap failed (exit {result.returncode}):\n{tail}", image.path, "rootfs")
        _upgrade(root, image, runner)
        removed = trim(root, image.exclude_paths, image.keep_paths)
        tarball = os.path.join(work, "rootfs.tar")
        packed = runner(["tar", "--numeric-owner", "-C", root, "-cf", tarball, "."])
        if packed.returncode != 0:
            raise GenError(f"packing the root filesystem failed: {packed.stderr.strip()[-2000:]}", image.path, "rootfs")
        _import(engine, tarball, ref, runner, image)
        if cached:
            os.replace(tarball, cached)
    log.info("%s: made %s in %.1fs (%.0f MB left out)", image.name, ref, time.monotonic() - started, removed / 1e6)
    return ref


def _upgrade(root: str, image: BaseImage, runner: Runner) -> None:
    """Brings the filesystem up to the release's -updates and -security suites (debootstrap takes
    the release alone). Otherwise the root's first install upgrades libc6 or libssl3 in a layer of
    its own, and the image carries both copies."""
    assert image.rootfs is not None
    sources = apt_sources.sources_list(image.rootfs.suite)
    if not sources:
        return
    with open(os.path.join(root, "etc", "apt", "sources.list"), "w", encoding="utf-8") as handle:
        handle.write(sources)
    for argv in (["apt-get", "-q", "update"],
                 ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "-o", "Dpkg::Options::=--force-confold", "dist-upgrade"]):
        result = runner(["chroot", root, *argv])
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise GenError(f"upgrading the root filesystem failed (exit {result.returncode}):\n{tail}", image.path, "rootfs")


def _require_tools(image: BaseImage, which: Callable[[str], str | None], is_root: Callable[[], bool]) -> None:
    hint = f"or pass --root-from {image.name}=IMAGE"
    if which("debootstrap") is None:
        raise GenError(f"debootstrap is not installed, and it makes the root filesystem from the Debian mirror: "
                       f"apt-get install debootstrap ({hint})", image.path, "rootfs")
    if not is_root():
        raise GenError(f"making a root filesystem needs root (debootstrap chroots into it): run tree build as root ({hint})",
                       image.path, "rootfs")


def _import(engine: str, tarball: str, ref: str, runner: Runner, image: BaseImage) -> None:
    for argv in import_argvs(engine, tarball, ref):
        result = runner(argv)
        if result.returncode != 0:
            raise GenError(f"{argv[0]} {argv[1]} of the root filesystem failed: {result.stderr.strip()[-2000:]}", image.path, "rootfs")
