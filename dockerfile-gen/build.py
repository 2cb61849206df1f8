"""`tree build`: build the base images parents-first with podman, buildah or docker.

Each image gets a content hash over everything that decides its bytes: its rendered Dockerfile,
the image ID of its FROM (the parent, or the root's `from`) and its build context (the agent
wheel's files, for the root). The hash is stored as a label; an image whose label already matches is
skipped. Progress is one line per image with the elapsed time.

A root with `rootfs` and no --root-from is built on a root filesystem made from the Debian mirror
(rootfs.py) when the engine's store does not have it yet.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from dockerfile_gen import rootfs
from dockerfile_gen.errors import GenError
from dockerfile_gen.render import HASH_LABEL, WHEEL_DIR, base_parent_ref, render_base_dockerfile
from dockerfile_gen.tree import Tree

log = logging.getLogger("dockerfile_gen")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


class Engine(Protocol):
    @property
    def name(self) -> str: ...

    def build_argv(self, tag: str, dockerfile: str, context: str, labels: dict[str, str],
                   volumes: Sequence[tuple[str, str]] = ()) -> list[str]: ...

    def inspect_argv(self, ref: str) -> list[str]: ...

    def labels(self, inspect_json: str) -> dict[str, str]: ...

    def image_id(self, inspect_json: str) -> str: ...

    def size(self, inspect_json: str) -> int | None: ...

    def push_argv(self, ref: str, dest: str, tls_verify: bool) -> list[str]: ...


@dataclass(frozen=True)
class PodmanLike:
    """podman and buildah share flags; only the subcommand names differ."""

    name: str
    build_cmd: tuple[str, ...]
    inspect_cmd: tuple[str, ...]

    def build_argv(self, tag: str, dockerfile: str, context: str, labels: dict[str, str],
                   volumes: Sequence[tuple[str, str]] = ()) -> list[str]:
        argv = [self.name, *self.build_cmd, "--format", "docker", "--layers", "-t", tag, "-f", dockerfile]
        for key, value in sorted(labels.items()):
            argv += ["--label", f"{key}={value}"]
        for host, inside in volumes:  # mounted for the RUN steps only, never part of the image
            argv += ["--volume", f"{host}:{inside}:ro"]
        return argv + [context]

    def inspect_argv(self, ref: str) -> list[str]:
        return [self.name, *self.inspect_cmd, ref]

    def labels(self, inspect_json: str) -> dict[str, str]:
        data = json.loads(inspect_json)
        if isinstance(data, list):  # podman image inspect
            return dict(data[0].get("Labels") or {})
        config = data.get("OCIv1", {}).get("config", {})  # buildah inspect
        return dict(config.get("Labels") or {})

    def image_id(self, inspect_json: str) -> str:
        data = json.loads(inspect_json)
        return str(data[0]["Id"] if isinstance(data, list) else data.get("FromImageID", ""))

    def size(self, inspect_json: str) -> int | None:
        """Uncompressed bytes (podman image inspect's Size); buildah inspect reports none."""
        data = json.loads(inspect_json)
        value = data[0].get("Size") if isinstance(data, list) else None
        return value if isinstance(value, int) else None

    def push_argv(self, ref: str, dest: str, tls_verify: bool) -> list[str]:
        return [self.name, "push", f"--tls-verify={'true' if tls_verify else 'false'}", ref, f"docker://{dest}"]


@dataclass(frozen=True)
class Docker:
    name: str = "docker"

    def build_argv(self, tag: str, dockerfile: str, context: str, labels: dict[str, str],
                   volumes: Sequence[tuple[str, str]] = ()) -> list[str]:
        if volumes:
            raise GenError("docker build cannot mount the machine's apt sources; pass --apt-sources image "
                           "or use podman or buildah", "--apt-sources")
        argv = ["docker", "build", "-t", tag, "-f", dockerfile]
        for key, value in sorted(labels.items()):
            argv += ["--label", f"{key}={value}"]
        return argv + [context]

    def inspect_argv(self, ref: str) -> list[str]:
        return ["docker", "image", "inspect", ref]

    def labels(self, inspect_json: str) -> dict[str, str]:
        return dict(json.loads(inspect_json)[0].get("Config", {}).get("Labels") or {})

    def image_id(self, inspect_json: str) -> str:
        return str(json.loads(inspect_json)[0]["Id"])

    def size(self, inspect_json: str) -> int | None:
        value = json.loads(inspect_json)[0].get("Size")
        return value if isinstance(value, int) else None

    def push_argv(self, ref: str, dest: str, tls_verify: bool) -> list[str]:
        # docker has no per-push TLS switch: insecure registries go in daemon.json.
        return ["docker", "push", dest]


ENGINES: dict[str, Engine] = {
    "podman": PodmanLike("podman", ("build",), ("image", "inspect")),
    "buildah": PodmanLike("buildah", ("bud",), ("inspect", "--type", "image")),
    "docker": Docker(),
}


def find_engine(name: str | None, which: Callable[[str], str | None] = shutil.which) -> Engine:
    if name is not None:
        if name not in ENGINES:
            raise GenError(f"unknown engine {name!r} (podman, buildah or docker)", "--engine")
        if which(name) is None:
            raise GenError(f"{name} is not installed", "--engine")
        return ENGINES[name]
    for candidate in ("podman", "buildah", "docker"):
        if which(candidate):
            return ENGINES[candidate]
    raise GenError("no container engine found: install podman, buildah or docker", "tree build")


def wheel_digest(wheel: str) -> str:
    """Hashes the wheel's member files, not the zip: zip timestamps change on every rebuild."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".dist-info/RECORD"):
                continue
            digest.update(name.encode() + b"\0" + hashlib.sha256(archive.read(name)).digest())
    return digest.hexdigest()


# setuptools builds wheels with the `wheel` package, or by itself from 70.1 on; `make demo`'s venv has neither.
WHEEL_MISSING = ("building the agent wheel needs the Python package 'wheel', which {python} lacks: run `make deps` "
                 "(or `{python} -m pip install wheel`), or pass --wheel FILE")


def can_build_wheels() -> bool:
    for name in ("wheel", "setuptools.command.bdist_wheel"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except ImportError:  # the parent package (setuptools) is missing
            continue
    return False


def build_wheel(source: str, out_dir: str) -> str:
    """Builds this repo's wheel offline (--no-build-isolation: the venv's setuptools and wheel)."""
    if not os.path.isfile(os.path.join(source, "setup.cfg")):
        raise GenError("is not the project source (no setup.cfg): pass --wheel FILE or --source DIR", source)
    if not can_build_wheels():
        raise GenError(WHEEL_MISSING.format(python=sys.executable), "tree build")
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out_dir, source])
    wheels = [f for f in os.listdir(out_dir) if f.endswith(".whl")]
    if "invalid command 'bdist_wheel'" in result.stderr:
        raise GenError(WHEEL_MISSING.format(python=sys.executable), "tree build")
    if result.returncode != 0 or len(wheels) != 1:
        raise GenError(f"building the agent wheel failed: {result.stderr.strip()[-2000:]}", source)
    return os.path.join(out_dir, wheels[0])


@dataclass(frozen=True)
class BuildResult:
    name: str
    ref: str
    status: str  # built | unchanged
    seconds: float


def content_hash(dockerfile: str, from_id: str, extra: str) -> str:
    return hashlib.sha256(f"{dockerfile}\0{from_id}\0{extra}".encode()).hexdigest()


def _inspect(engine: Engine, ref: str, runner: Runner) -> str | None:
    result = runner(engine.inspect_argv(ref))
    return result.stdout if result.returncode == 0 else None


def build_tree(
    tree: Tree,
    engine: Engine,
    prefix: str,
    wheel: str,
    root_from: Mapping[str, str] | None = None,
    only: Sequence[str] = (),
    push: str | None = None,
    tls_verify: bool = True,
    runner: Runner = run,
    clock: Callable[[], float] = time.monotonic,
    apt_sources: Mapping[str, str] | None = None,
    rootfs_cache: str | None = None,
) -> list[BuildResult]:
    """apt_sources: per root, a sources.list the images' apt steps use instead of their own (the
    machine's mirror, see apt_sources.py); mounted during the build, so it changes neither image
    nor hash. An image of a root without an entry keeps its own sources. rootfs_cache: a directory
    that keeps the root filesystems made from the mirror (rootfs.py)."""
    names = selected_images(tree, only)
    ensure_root_filesystems(tree, names, engine, root_from or {}, runner, rootfs_cache)
    wheel_hash = wheel_digest(wheel)
    results = []
    with tempfile.TemporaryDirectory(prefix="tree-build-") as work:
        mounts = {root: _apt_volumes(os.path.join(work, f"apt-{root}"), text) for root, text in (apt_sources or {}).items()}
        for index, name in enumerate(names, 1):
            image = tree.images[name]
            ref = tree.ref(name, prefix)
            dockerfile = render_base_dockerfile(image, tree, prefix, root_from, wheel_hash if image.image.parent is None else "")
            # The FROM image's ID, not its tag: a rebuilt parent makes every child stale.
            from_ref = base_parent_ref(image, tree, prefix, root_from or {})
            found = _inspect(engine, from_ref, runner)
            if found is None:
                raise GenError(f"base image {from_ref} is not available to {engine.name}: import or pull it first (or pass --root-from {name}=IMAGE)", image.image.path, "from")
            extra = wheel_hash if image.image.parent is None else ""
            digest = content_hash(dockerfile, engine.image_id(found), extra)
            started = clock()
            existing = _inspect(engine, ref, runner)
            if existing is not None and engine.labels(existing).get(HASH_LABEL) == digest:
                status = "unchanged"
            else:
                context = os.path.join(work, name)
                os.makedirs(context)
                with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
                    handle.write(dockerfile)
                if image.image.parent is None:
                    os.makedirs(os.path.join(context, WHEEL_DIR))
                    shutil.copy(wheel, os.path.join(context, WHEEL_DIR))
                log.info("[%d/%d] %s: building %s", index, len(names), name, ref)
                result = runner(engine.build_argv(ref, os.path.join(context, "Dockerfile"), context, {HASH_LABEL: digest},
                                                  mounts.get(image.chain[0], ())))
                if result.returncode != 0:
                    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
                    raise GenError(f"{engine.name} build failed (exit {result.returncode}):\n{tail}", image.image.path)
                status = "built"
            elapsed = clock() - started
            log.info("[%d/%d] %s: %s %s in %.1fs (hash %s)", index, len(names), name, status, ref, elapsed, digest[:12])
            if push:
                push_image(engine, ref, f"{push}/{name}:{image.image.version}", tls_verify, runner)
                log.info("[%d/%d] %s: pushed to %s/%s:%s", index, len(names), name, push, name, image.image.version)
            results.append(BuildResult(name, ref, status, elapsed))
    return results


def ensure_root_filesystems(tree: Tree, names: Sequence[str], engine: Engine, root_from: Mapping[str, str],
                            runner: Runner = run, cache: str | None = None) -> None:
    """Makes the root filesystem of each root that has `rootfs`, no override, and none in the store."""
    for name in names:
        image = tree.images[name].image
        if image.parent is None and image.rootfs is not None and name not in root_from:
            if _inspect(engine, rootfs.rootfs_ref(image), runner) is None:
                rootfs.make_rootfs(image, engine.name, runner, cache)


def image_sizes(tree: Tree, engine: Engine, prefix: str, runner: Runner = run) -> dict[str, int | None]:
    """Each tree image's uncompressed size in the engine's store, None where it is not there."""
    sizes: dict[str, int | None] = {}
    for name in tree.order:
        found = _inspect(engine, tree.ref(name, prefix), runner)
        sizes[name] = engine.size(found) if found is not None else None
    return sizes


def _apt_volumes(work: str, sources: str) -> tuple[tuple[str, str], ...]:
    """sources.list over the image's, and an empty directory over its sources.list.d (where
    Debian images keep debian.sources), so apt reads only the given entries."""
    os.makedirs(os.path.join(work, "sources.list.d"))
    with open(os.path.join(work, "sources.list"), "w", encoding="utf-8") as handle:
        handle.write(sources)
    return ((os.path.join(work, "sources.list"), "/etc/apt/sources.list"),
            (os.path.join(work, "sources.list.d"), "/etc/apt/sources.list.d"))


def selected_images(tree: Tree, only: Sequence[str]) -> list[str]:
    """All images, or the named ones with their ancestors; always parents first."""
    if not only:
        return list(tree.order)
    wanted: set[str] = set()
    for name in only:
        if name not in tree.images:
            raise GenError(f"no image named {name!r} in the tree (known: {', '.join(tree.order)})", "tree build")
        wanted.update(tree.images[name].chain)
    return [n for n in tree.order if n in wanted]


def push_image(engine: Engine, ref: str, dest: str, tls_verify: bool, runner: Runner = run) -> None:
    if engine.name == "docker":
        tagged = runner(["docker", "tag", ref, dest])
        if tagged.returncode != 0:
            raise GenError(f"docker tag failed: {tagged.stderr.strip()}", dest)
    result = runner(engine.push_argv(ref, dest, tls_verify))
    if result.returncode != 0:
        raise GenError(f"push failed: {result.stderr.strip()[-2000:]}", dest)
