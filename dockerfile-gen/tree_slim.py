"""The tree keys that keep the images small, parsed and checked (docs/dockerfile-gen.md, "Slim bases"):

- `rootfs` (a root): the Debian suite and debootstrap variant `tree build` makes the root's
  filesystem from, with the mirror in this machine's apt sources; no registry is needed;
- `exclude_paths` / `keep_paths` (a root): paths dpkg never unpacks, in the root and in every
  image and app built on it (dpkg.cfg.d path-exclude / path-include);
- `jlink` (an image that provides java): the Java runtime is made with jlink from a Debian JDK
  package in a build stage; only the runtime reaches the image;
- `size_budget_mb`: the most the image may weigh, uncompressed, as the engine reports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockerfile_gen import checks

SUITE = re.compile(r"[a-z][a-z0-9-]{1,30}")
VARIANTS = ("minbase", "buildd")  # debootstrap variants without Recommends-heavy extras
# A dpkg path glob: absolute, no whitespace or shell syntax beyond the glob characters.
PATH_GLOB = re.compile(r"/[A-Za-z0-9_@+=,.:/*?-]+")
MODULE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*|ALL-MODULE-PATH")
LOCALE = re.compile(r"[A-Za-z0-9*][A-Za-z0-9*-]{0,34}")
JLINK_KEYS = frozenset({"jdk", "modules", "locales"})
ROOTFS_KEYS = frozenset({"suite", "variant"})
MAX_BUDGET_MB = 100_000


@dataclass(frozen=True)
class Rootfs:
    """A root filesystem `tree build` makes with debootstrap (rootfs.py)."""

    suite: str  # Debian codename: bookworm, trixie
    variant: str  # debootstrap --variant


@dataclass(frozen=True)
class Jlink:
    """A Java runtime made with jlink (jlink.py)."""

    jdk: str  # the Debian package with jlink and the jmods
    modules: tuple[str, ...]  # --add-modules, in the file's order
    locales: tuple[str, ...]  # --include-locales; empty: every locale of the modules


def rootfs(value: Any, path: str) -> Rootfs:
    doc = checks.mapping(value, path, "rootfs")
    checks.known_keys(doc, ROOTFS_KEYS, path, "rootfs")
    if "suite" not in doc:
        checks.fail(path, "rootfs.suite", "is required: the Debian codename to debootstrap, e.g. bookworm")
    suite = checks.matching(doc["suite"], SUITE, "a Debian codename such as bookworm", path, "rootfs.suite")
    variant = doc.get("variant", "minbase")
    if variant not in VARIANTS:
        checks.fail(path, "rootfs.variant", f"{variant!r} is not one of {', '.join(VARIANTS)}")
    return Rootfs(suite=suite, variant=variant)


def path_globs(value: Any, path: str, key: str) -> tuple[str, ...]:
    items = checks.string_list(value if value is not None else [], path, key)
    return tuple(checks.matching(p, PATH_GLOB, "an absolute path glob such as /usr/share/doc/*", path, f"{key}[{i}]")
                 for i, p in enumerate(items))


def jlink(value: Any, path: str) -> Jlink:
    doc = checks.mapping(value, path, "jlink")
    checks.known_keys(doc, JLINK_KEYS, path, "jlink")
    if "jdk" not in doc:
        checks.fail(path, "jlink.jdk", "is required: the Debian JDK package with jlink and the jmods, e.g. openjdk-17-jdk-headless")
    jdk = checks.matching(doc["jdk"], checks.PACKAGE, "a Debian package name", path, "jlink.jdk")
    modules = checks.string_list(doc.get("modules", []), path, "jlink.modules")
    if not modules:
        checks.fail(path, "jlink.modules", "list the modules of the runtime, e.g. [java.se, jdk.unsupported]")
    names = tuple(checks.matching(m, MODULE, "a Java module name", path, f"jlink.modules[{i}]") for i, m in enumerate(modules))
    if len(set(names)) != len(names):
        checks.fail(path, "jlink.modules", "names a module twice")
    locales = tuple(checks.matching(t, LOCALE, "a language tag such as de or en-US", path, f"jlink.locales[{i}]")
                    for i, t in enumerate(checks.string_list(doc.get("locales", []), path, "jlink.locales")))
    if locales and "jdk.localedata" not in names:
        checks.fail(path, "jlink.locales", "needs jdk.localedata in jlink.modules")
    return Jlink(jdk=jdk, modules=names, locales=locales)


def budget(value: Any, path: str) -> int | None:
    if value is None:
        return None
    return checks.integer(value, path, "size_budget_mb", 1, MAX_BUDGET_MB)
