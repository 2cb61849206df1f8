"""Podman for the container and pod tiers (a pytest plugin, loaded by tests/conftest.py, so both
tiers share one engine, one root image and one tree build per session): our own containers.conf
and storage, a debootstrap root image.

Nothing is pulled from a registry. The root filesystem is made with debootstrap once and cached as
a tarball in .cache/container/ (gitignored); a fresh machine makes it in about a minute. Images
live in a per-session graphroot that is reset and deleted at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "container"
ROOTFS_TAR = CACHE / "debian-bookworm-minbase-python3.tar"
MIRROR = "http://deb.debian.org/debian"
ROOT_FROM = "localhost/debian:bookworm"
BASE_PREFIX = "localhost/base"
TREE_IMAGES = ("root", "jre-17", "tomcat10")
REPORT = CACHE / "last-run.json"  # measured numbers for docs/dockerfile-gen.md

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
[network]
network_config_dir = "{networks}"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graph}"
runroot = "{run}"
"""
REGISTRIES_CONF = 'unqualified-search-registries = []\n'


@dataclass(frozen=True)
class Engine:
    env: dict[str, str]
    work: Path

    def run(self, *argv: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def podman(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args, check=check, timeout=timeout)

    def gen(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "dockerfile_gen", "--tree", str(REPO / "image-tree"), *args, check=check)


def record(key: str, value: object) -> None:
    """Adds a measured number to the report the docs quote."""
    CACHE.mkdir(parents=True, exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[key] = value
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def ensure_rootfs() -> Path:
    """debootstrap's minbase + python3, tarred; made once per machine (the tarball is the cache)."""
    if ROOTFS_TAR.exists():
        return ROOTFS_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(root), MIRROR],
                       check=True, capture_output=True, timeout=900)
        # The downloaded .debs and package lists are build leftovers, not part of the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, ROOTFS_TAR)
    record("rootfs_debootstrap_seconds", round(time.monotonic() - started, 1))
    return ROOTFS_TAR


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    require_root()
    for tool in ("podman", "buildah", "runc", "debootstrap", "javac", "jar", "docker-registry", "skopeo"):
        require_tool(tool)
    work = Path(tempfile.mkdtemp(prefix="k8sjb-containers-", dir="/var/tmp"))
    # Networks live in the session's dir too: `podman system reset` at the end removes only ours.
    (work / "containers.conf").write_text(CONTAINERS_CONF.format(tmp=work / "libpod", networks=work / "networks"))
    (work / "storage.conf").write_text(STORAGE_CONF.format(graph=work / "graph", run=work / "run"))
    (work / "registries.conf").write_text(REGISTRIES_CONF)
    env = dict(os.environ)
    env.update(
        CONTAINERS_CONF=str(work / "containers.conf"),
        CONTAINERS_STORAGE_CONF=str(work / "storage.conf"),
        CONTAINERS_REGISTRIES_CONF=str(work / "registries.conf"),
        # buildah and podman share the storage; keep buildah's own state under the work dir too.
        TMPDIR=str(work / "tmp"),
    )
    (work / "tmp").mkdir()
    started = time.monotonic()
    yield Engine(env=env, work=work)
    subprocess.run(["podman", "rm", "--all", "--force", "--time", "0"], env=env, capture_output=True, check=False)
    subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True, check=False)
    subprocess.run(["umount", "-R", str(work / "graph")], capture_output=True, check=False)
    shutil.rmtree(work, ignore_errors=True)
    record("container_tier_session_seconds", round(time.monotonic() - started, 1))


@pytest.fixture(scope="session")
def debian_image(engine: Engine) -> str:
    started = time.monotonic()
    tarball = ensure_rootfs()
    engine.podman("import", "--quiet", str(tarball), ROOT_FROM)
    record("rootfs_import_seconds", round(time.monotonic() - started, 1))
    return ROOT_FROM


@dataclass(frozen=True)
class TreeBuild:
    log: str
    seconds: float


def agent_wheel(engine: Engine) -> Path:
    """One wheel per session, so every build in it hashes the same agent."""
    wheels = sorted((engine.work / "wheel").glob("*.whl"))
    if not wheels:
        engine.run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(engine.work / "wheel"), str(REPO))
        wheels = sorted((engine.work / "wheel").glob("*.whl"))
    return wheels[0]


def tree_build(engine: Engine, *extra: str) -> TreeBuild:
    started = time.monotonic()
    result = engine.gen("tree", "build", *TREE_IMAGES, "--engine", "podman", "--root-from", ROOT_FROM,
                        "--wheel", str(agent_wheel(engine)), *extra)
    return TreeBuild(log=result.stderr, seconds=time.monotonic() - started)


@pytest.fixture(scope="session")
def built_tree(engine: Engine, debian_image: str) -> TreeBuild:
    build = tree_build(engine)
    record("tree_build_cold", {"seconds": round(build.seconds, 1), "log": build.log.splitlines()})
    return build


def compile_app(source: Path, dest: Path, kind: str) -> Path:
    """Copies an example app and builds its artifact with javac/jar, as CI would before generating."""
    shutil.copytree(source, dest)
    classes = dest / "build" / ("war/WEB-INF/classes" if kind == "war" else "classes")
    classes.mkdir(parents=True)
    sources = [str(p) for p in sorted((dest / "src").rglob("*.java"))]
    classpath: Sequence[str] = ["-cp", "/usr/share/java/tomcat10-servlet-api.jar"] if kind == "war" else []
    subprocess.run(["javac", "--release", "17", *classpath, "-d", str(classes), *sources], check=True, capture_output=True)
    if kind == "war":
        shutil.copytree(dest / "web", dest / "build" / "war", dirs_exist_ok=True)
        subprocess.run(["jar", "--create", "--file", str(dest / "build" / f"{dest.name}.war"), "-C", str(dest / "build" / "war"), "."], check=True)
        return dest / "build" / f"{dest.name}.war"
    jar = dest / "build" / f"{dest.name}.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "--main-class", "hello.Hello", "-C", str(classes), "."], check=True)
    return jar
