"""The image tree as plain data: load → validate → resolve.

Each YAML file under the tree directory describes one base image. Resolving checks names,
parents and cycles, orders the images parents-first, and merges every image with its ancestors,
root → leaf:

- `packages` are additive and deduplicated: an image installs only what no ancestor has;
- `provides`, `env` and `labels` are mappings: a child's key replaces its parent's;
- `provides.users` is a list and is additive, like packages;
- `run` steps are not inherited: each image's steps run once, in its own Dockerfile;
- a `jlink` runtime is inherited like packages: the images below run on it;
- a root's `exclude_paths` and `keep_paths` hold for every image below it (dpkg reads them in the
  image), so only a root sets them; `size_budget_mb` is each image's own.

The slim keys (`rootfs`, `exclude_paths`, `keep_paths`, `jlink`, `size_budget_mb`) are parsed in
tree_slim.py.

Nothing is changed in place; every resolved image is a new frozen object.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockerfile_gen import checks, tree_slim
from dockerfile_gen.errors import GenError
from dockerfile_gen.input_files import TREE_FILE, TREE_LIMITS, read_input
from dockerfile_gen.kinds import JAVA_VERSIONS, SERVLETS
from dockerfile_gen.tree_slim import Jlink, Rootfs

KEYS = frozenset("name parent from rootfs version description provides packages env run labels "
                 "exclude_paths keep_paths jlink size_budget_mb".split())


@dataclass(frozen=True)
class BaseImage:
    """One tree file, validated but not yet resolved."""

    path: str
    name: str
    parent: str | None
    from_: str | None
    version: str
    description: str
    provides: Mapping[str, Any]
    packages: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    run: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    rootfs: Rootfs | None = None
    exclude_paths: tuple[str, ...] = ()
    keep_paths: tuple[str, ...] = ()
    jlink: Jlink | None = None
    size_budget_mb: int | None = None


@dataclass(frozen=True)
class ResolvedImage:
    image: BaseImage
    chain: tuple[str, ...]  # root … self
    provides: Mapping[str, Any]
    packages: frozenset[str]  # everything installed, ancestors included
    own_packages: tuple[str, ...]  # what this image's Dockerfile installs, sorted
    env: tuple[tuple[str, str], ...]
    users: frozenset[str]
    runtime: Jlink | None = None  # the jlink runtime this image runs on, its own or an ancestor's

    @property
    def name(self) -> str:
        return self.image.name

    @property
    def depth(self) -> int:
        return len(self.chain) - 1

    @property
    def java(self) -> int | None:
        value = self.provides.get("java")
        return value if isinstance(value, int) else None

    @property
    def servlet(self) -> str | None:
        value = self.provides.get("servlet")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Tree:
    images: Mapping[str, ResolvedImage]
    order: tuple[str, ...]  # parents before children; ties by name

    def ref(self, name: str, prefix: str) -> str:
        """The image reference an app's FROM line uses. Tags are versions, never `latest`."""
        return f"{prefix}/{name}:{self.images[name].image.version}"

    def children(self, name: str) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.images[n].image.parent == name)

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if self.images[n].image.parent is None)


def root_overrides(tree: Tree, values: Sequence[str], images: Sequence[str] = ()) -> dict[str, str]:
    """`--root-from [ROOT=]IMAGE` words → {root name: image}. A bare IMAGE is allowed only when the
    images in question (`images`, else the whole tree) come from one root; otherwise it would be
    ambiguous which root it replaces."""
    roots = sorted({tree.images[n].chain[0] for n in images if n in tree.images} if images else tree.roots)
    out: dict[str, str] = {}
    for value in values:
        name, sep, ref = value.partition("=")
        if not sep:
            if len(roots) != 1:
                raise GenError(f"{value!r} names no root, and the images come from {len(roots)} roots ({', '.join(roots)}): write ROOT=IMAGE, once per root", "--root-from")
            name, ref = roots[0], value
        elif name not in tree.roots:
            raise GenError(f"{name!r} is not a root of the tree (roots: {', '.join(tree.roots)})", "--root-from")
        if name in out:
            raise GenError(f"root {name!r} is given twice", "--root-from")
        out[name] = _image_ref(ref, "--root-from", name)
    return out


def load_tree(directory: str) -> Tree:
    if not os.path.isdir(directory):
        raise GenError("image tree directory does not exist (pass --tree DIR)", directory)
    paths = sorted(
        os.path.join(directory, f) for f in os.listdir(directory) if f.endswith((".yaml", ".yml"))
    )
    if not paths:
        raise GenError("image tree directory holds no *.yaml files", directory)
    return resolve(load_image(p) for p in paths)


def load_image(path: str) -> BaseImage:
    return parse_image(read_input(path, TREE_FILE, TREE_LIMITS), path)


def parse_image(data: Any, path: str) -> BaseImage:
    doc = checks.mapping(data, path, "")
    checks.known_keys(doc, KEYS, path, "")
    if "name" not in doc:
        checks.fail(path, "name", "is required")
    name = checks.matching(doc["name"], checks.IMAGE_NAME, "an image name (lower-case letters, digits, ._-)", path, "name")
    parent = doc.get("parent")
    from_ = doc.get("from")
    if sum(doc.get(key) is not None for key in ("parent", "from", "rootfs")) != 1:
        checks.fail(path, "parent", "set exactly one of `parent` (a tree image), `from` (the root's base image) "
                                    "or `rootfs` (a root made from the Debian mirror)")
    for key in ("exclude_paths", "keep_paths"):
        if parent is not None and doc.get(key) is not None:
            checks.fail(path, key, "only a root sets it: it holds for every image below the root")
    if parent is not None:
        parent = checks.matching(parent, checks.IMAGE_NAME, "an image name", path, "parent")
    if from_ is not None:
        from_ = _image_ref(from_, path, "from")
    provides = _provides(doc.get("provides"), path)
    if doc.get("jlink") is not None and "java" not in provides:
        checks.fail(path, "jlink", "needs provides.java: the runtime's Java major")
    if doc.get("jlink") is not None and parent is None:
        checks.fail(path, "jlink", "a root carries the agent, not a runtime: link it in an image below the root")
    version = doc.get("version")
    if version is None:
        checks.fail(path, "version", "is required: it is the image's tag")
    version = checks.matching(str(version), checks.VERSION_TAG, "a tag", path, "version")
    if version == "latest":
        checks.fail(path, "version", "must not be 'latest': tags name one build")
    return BaseImage(
        path=path,
        name=name,
        parent=parent,
        from_=from_,
        version=version,
        description=checks.label_value(doc.get("description", ""), path, "description") if doc.get("description") else "",
        provides=provides,
        packages=_packages(doc.get("packages"), path),
        env=_env(doc.get("env"), path),
        run=tuple(checks.string(step, path, f"run[{i}]") for i, step in enumerate(checks.string_list(doc.get("run", []), path, "run"))),
        labels=tuple(
            (checks.matching(k, checks.LABEL_KEY, "a label key", path, f"labels.{k}"), checks.label_value(v, path, f"labels.{k}"))
            for k, v in sorted(checks.mapping(doc.get("labels", {}), path, "labels").items())
        ),
        rootfs=tree_slim.rootfs(doc["rootfs"], path) if doc.get("rootfs") is not None else None,
        exclude_paths=tree_slim.path_globs(doc.get("exclude_paths"), path, "exclude_paths"),
        keep_paths=tree_slim.path_globs(doc.get("keep_paths"), path, "keep_paths"),
        jlink=tree_slim.jlink(doc["jlink"], path) if doc.get("jlink") is not None else None,
        size_budget_mb=tree_slim.budget(doc.get("size_budget_mb"), path),
    )


def _image_ref(value: Any, path: str, key: str) -> str:
    text = checks.string(value, path, key)
    if checks.SHELL_META.search(text) or ":" not in text.rsplit("/", 1)[-1]:
        checks.fail(path, key, f"{text!r} must be an image reference with an explicit tag, e.g. localhost/debian:bookworm")
    if text.endswith(":latest"):
        checks.fail(path, key, f"{text!r}: pin a tag other than 'latest'")
    return text


def _provides(value: Any, path: str) -> Mapping[str, Any]:
    doc = checks.mapping(value if value is not None else {}, path, "provides")
    out: dict[str, Any] = {}
    for key in sorted(doc):
        item = doc[key]
        where = f"provides.{key}"
        if key == "java":
            if isinstance(item, bool) or item not in JAVA_VERSIONS:
                checks.fail(path, where, f"{item!r} is not one of {', '.join(map(str, JAVA_VERSIONS))}")
        elif key == "servlet":
            if item not in SERVLETS:
                checks.fail(path, where, f"{item!r} is not a known servlet container ({', '.join(sorted(SERVLETS))})")
        elif key == "users":
            item = tuple(sorted(checks.user(u, path, f"{where}[{i}]") for i, u in enumerate(checks.string_list(item, path, where))))
        elif not isinstance(item, (str, int, bool)):
            checks.fail(path, where, f"must be a string, number or boolean (got {checks.type_name(item)})")
        out[key] = item
    return out


def _packages(value: Any, path: str) -> tuple[str, ...]:
    items = checks.string_list(value if value is not None else [], path, "packages")
    return tuple(sorted({checks.matching(p, checks.PACKAGE, "a Debian package name", path, f"packages[{i}]") for i, p in enumerate(items)}))


def _env(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    doc = checks.mapping(value if value is not None else {}, path, "env")
    out = []
    for key in sorted(doc):
        checks.matching(key, checks.ENV_NAME, "an environment variable name", path, f"env.{key}")
        out.append((key, checks.label_value(doc[key], path, f"env.{key}")))
    return tuple(out)


def resolve(images: Iterable[BaseImage]) -> Tree:
    """Checks names, parents and cycles, then merges each image with its ancestors (root → leaf)."""
    by_name: dict[str, BaseImage] = {}
    for image in images:
        if image.name in by_name:
            raise GenError(f"duplicate image name {image.name!r}: also defined in {by_name[image.name].path}", image.path, "name")
        by_name[image.name] = image
    for image in by_name.values():
        if image.parent is not None and image.parent not in by_name:
            known = ", ".join(sorted(by_name))
            raise GenError(f"no image named {image.parent!r} in the tree (known: {known})", image.path, "parent")
    chains = {name: _chain(name, by_name) for name in by_name}
    order = tuple(sorted(by_name, key=lambda n: (len(chains[n]), n)))
    resolved: dict[str, ResolvedImage] = {}
    for name in order:  # parents first, so each merge reads an already-resolved parent
        image = by_name[name]
        parent = resolved[image.parent] if image.parent is not None else None
        resolved[name] = _merge(image, parent, chains[name])
    return Tree(images=resolved, order=order)


def _chain(name: str, by_name: Mapping[str, BaseImage]) -> tuple[str, ...]:
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            loop = seen[seen.index(current):] + [current]
            raise GenError(f"the tree has a cycle: {' -> '.join(loop)}", by_name[current].path, "parent")
        seen.append(current)
        current = by_name[current].parent
    return tuple(reversed(seen))


def _merge(image: BaseImage, parent: ResolvedImage | None, chain: tuple[str, ...]) -> ResolvedImage:
    inherited = parent.packages if parent else frozenset()
    provides = dict(parent.provides) if parent else {}
    provides.update(image.provides)
    users = (parent.users if parent else frozenset()) | frozenset(image.provides.get("users", ()))
    provides.pop("users", None)
    env = dict(parent.env) if parent else {}
    env.update(image.env)
    return ResolvedImage(
        image=image,
        chain=chain,
        provides=provides,
        packages=inherited | frozenset(image.packages),
        own_packages=tuple(p for p in image.packages if p not in inherited),
        env=tuple(sorted(env.items())),
        users=users,
        runtime=image.jlink or (parent.runtime if parent else None),
    )
