"""Podman for the container and pod tiers (a pytest plugin, loaded by tests/conftest.py, so both
tiers share one engine and one tree build per session): our own containers.conf and storage.

Nothing is pulled from a registry. The session's `tree build` starts from a clean image store and
makes each root filesystem itself (Debian bookworm for the Java 17 branch, trixie for Java 21 and
25) with debootstrap from the Debian mirror this machine's apt uses; `--rootfs-cache` keeps them as
tarballs in .cache/container/ (gitignored), so a fresh machine makes each once, in about two
minutes. Images live in a per-session graphroot that is reset and deleted at the end.

ensure_rootfs and import_roots make and import a minbase + python3 root filesystem of their own
(localhost/debian:<suite>), for the benchmarks that need a plain Debian image.
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
from datetime import datetime
from pathlib import Path

import pytest

from dockerfile_gen import apt_sources
from tests.support.paths import REPO
from tests.support.prereq import require, require_root

CACHE = REPO / ".cache" / "container"
# Each tree root and the Debian suite its rootfs is made from; imported as localhost/debian:<suite>.
ROOT_SUITES = {"root": "bookworm", "root-trixie": "trixie"}
BASE_PREFIX = "localhost/base"
# Parents first, in the order `tree build` prints them: both roots, then the JREs, then Tomcat.
TREE_IMAGES = ("root", "root-trixie", "jre-17", "jre-21", "jre-25", "tomcat10", "tomcat10-jre21")
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


def ensure_rootfs(suite: str = "bookworm") -> Path:
    """debootstrap's minbase + python3 of one Debian suite, tarred; made once per machine (the
    tarball is the cache)."""
    tarball = CACHE / f"debian-{suite}-minbase-python3.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        # The machine's own Debian mirror (its apt sources, or DEBIAN_MIRROR): an offline build
        # network has one of its own. One reader for this and `tree build`: dockerfile_gen.apt_sources.
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", suite, str(root),
                        apt_sources.debian_mirror(suite)],
                       check=True, capture_output=True, timeout=900)
        # The downloaded .debs and package lists are build leftovers, not part of the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, tarball)
    record(f"rootfs_debootstrap_seconds_{suite}", round(time.monotonic() - started, 1))
    return tarball


# Tools the tier runs, with the Debian package that has each (deps/apt-container.txt). netavark is
# podman's network backend (not on PATH) and needs iptables, which Debian lists only as Suggests:
# without it every container fails with a bare "netavark: No such file or directory".
CONTAINER_TOOLS = {"podman": "podman", "buildah": "buildah", "runc": "runc", "debootstrap": "debootstrap",
                   "javac": "openjdk-17-jdk-headless", "jar": "openjdk-17-jdk-headless",
                   "docker-registry": "docker-registry", "skopeo": "skopeo", "iptables": "iptables"}
NETAVARK_PATHS = ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark")


def require_tools() -> None:
    """Names every missing tool at once, with its package, rather than the first one only."""
    missing = [f"{tool} ({package})" for tool, package in CONTAINER_TOOLS.items() if shutil.which(tool) is None]
    if not any(os.access(path, os.X_OK) for path in NETAVARK_PATHS):
        missing.append("netavark (netavark)")
    require(not missing, f"missing for the container tier: {', '.join(missing)}; scripts/install-deps.sh installs them")


def private_engine(prefix: str = "k8sjb-containers-") -> Engine:
    """podman and buildah on their own containers.conf and storage in a new work directory, so
    nothing here touches (or is touched by) any other storage on the machine."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    # Networks live in the work dir too: `podman system reset` at the end removes only ours.
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
    return Engine(env=env, work=work)


def remove_engine(engine: Engine) -> None:
    subprocess.run(["podman", "rm", "--all", "--force", "--time", "0"], env=engine.env, capture_output=True, check=False)
    subprocess.run(["podman", "system", "reset", "--force"], env=engine.env, capture_output=True, check=False)
    subprocess.run(["umount", "-R", str(engine.work / "graph")], capture_output=True, check=False)
    shutil.rmtree(engine.work, ignore_errors=True)


def import_roots(engine: Engine) -> dict[str, float]:
    """Imports each root's rootfs as localhost/debian:<suite>; returns the seconds each took."""
    seconds = {}
    for suite in ROOT_SUITES.values():
        started = time.monotonic()
        engine.podman("import", "--quiet", str(ensure_rootfs(suite)), f"localhost/debian:{suite}")
        seconds[suite] = round(time.monotonic() - started, 1)
    return seconds


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    require_root()
    require_tools()
    engine = private_engine()
    started = time.monotonic()
    yield engine
    remove_engine(engine)
    record("container_tier_session_seconds", round(time.monotonic() - started, 1))


@pytest.fixture(scope="session")
def debian_images(engine: Engine) -> None:
    for suite, seconds in import_roots(engine).items():
        record(f"rootfs_import_seconds_{suite}", seconds)


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


def tree_build(engine: Engine, *extra: str, images: Sequence[str] = TREE_IMAGES) -> TreeBuild:
    """`tree build` as a builder runs it: the roots made from the Debian mirror (no --root-from)."""
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    result = engine.gen("tree", "build", *images, "--engine", "podman", "--rootfs-cache", str(CACHE),
                        "--wheel", str(agent_wheel(engine)), *extra)
    return TreeBuild(log=result.stderr, seconds=time.monotonic() - started)


@pytest.fixture(scope="session")
def built_tree(engine: Engine) -> TreeBuild:
    build = tree_build(engine)
    record("tree_build_cold", {"seconds": round(build.seconds, 1), "log": build.log.splitlines()})
    return build


def start_to_ready(engine: Engine, container: str) -> float:
    """Seconds from the container's start (runc started PID 1) to the agent's `ready_at`: the agent's
    own start-up, the JVM's or Tomcat's, and the readiness check's latency (25 ms polling)."""
    started_ns = int(engine.podman("inspect", "--format", "{{.State.StartedAt.UnixNano}}", container).stdout)
    status = json.loads(engine.podman("exec", container, "cat", "/run/bootstrap/status.json").stdout)
    ready_at = datetime.fromisoformat(status["ready_at"].replace("Z", "+00:00")).timestamp()
    return round(ready_at - started_ns / 1e9, 3)


def compile_app(source: Path, dest: Path, kind: str) -> Path:
    """Copies an example app and builds its artifact with javac/jar, as CI would before generating.
    Class files target Java 17, so the same artifact runs on the 17, 21 and 25 bases."""
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
