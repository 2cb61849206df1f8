#!/usr/bin/env python3
"""Image bytes of the base tree, slim against today's (part of `make bench`, through
bench/java_start.py, which builds both trees once and also times start to ready on both).

- size: each base's uncompressed size (podman image inspect), against its tree budget;
- pushed: the compressed bytes a push of each base sends to an empty local registry (a real
  docker-registry on 127.0.0.1), and what it adds to its parent's;
- app update: the compressed bytes a node that has the base pulls for a new version of the example
  jar: the layers of version 2 that version 1's image does not have, against artifact + config + 1 MB;
- cold build: the whole tree from an empty image store (root filesystems from the cache).

"Today's" tree is the tree and generator of BASELINE_REF (the last commit before the slim tree),
taken with `git archive` and run from a temporary directory; its roots are the debootstrap root
filesystems of tests/podman_engine.py, imported as localhost/debian:<suite>.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dockerfile_gen.tree import load_tree  # noqa: E402
from tests.podman_engine import CACHE, Engine, compile_app, import_roots, tree_build  # noqa: E402
from tests.support.registries import RegistryProcess  # noqa: E402

BASELINE_REF = "fbedf2ad3e5cd2e67286a3170f6f9c1dc5bbf02d"  # the tree before the slim bases (issue 22)
SLIM_PREFIX, TODAY_PREFIX = "localhost/base", "localhost/today"
IMAGES = ("root", "root-trixie", "jre-17", "jre-21", "jre-25", "tomcat10", "tomcat10-jre21",
          "jre-17-fonts", "tomcat10-fonts", "jdk-17")
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- image-size:begin -->", "<!-- image-size:end -->"
MB = 1_000_000


def log(message: str) -> None:
    print(f"[image-size] {message}", file=sys.stderr, flush=True)


@dataclass
class TreeBytes:
    """One tree's measurements; sizes in bytes, keyed by image name."""

    prefix: str
    build_seconds: float = 0.0
    size: dict[str, int] = field(default_factory=dict)
    pushed: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)  # compressed bytes not in the parent


def baseline_generator(work: Path, ref: str = BASELINE_REF) -> Path:
    """Today's tree and generator, from git, in WORK/today; dockerfile_gen importable from there."""
    dest = work / "today"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "image-tree", "dockerfile-gen",
                              "bootstrap", "helm", "setup.cfg", "pyproject.toml", "README.md"], capture_output=True, check=True)
    (work / "today.tar").write_bytes(archive.stdout)
    subprocess.run(["tar", "-x", "-f", str(work / "today.tar"), "-C", str(dest)], check=True)
    (dest / "dockerfile_gen").symlink_to("dockerfile-gen")
    return dest


def build_today(engine: Engine, today: Path, images: tuple[str, ...]) -> float:
    """Today's `tree build`, as the tests ran it: roots from localhost/debian:<suite>."""
    wheel_dir = today / "wheel"
    engine.run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(today))
    env = dict(engine.env, PYTHONPATH=str(today))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "dockerfile_gen", "--tree", str(today / "image-tree"), "--base-prefix", TODAY_PREFIX,
                    "tree", "build", *images, "--engine", "podman", "--root-from", "root=localhost/debian:bookworm",
                    "--root-from", "root-trixie=localhost/debian:trixie", "--wheel", str(next(wheel_dir.glob("*.whl")))],
                   env=env, check=True, capture_output=True, text=True, timeout=7200)
    return time.monotonic() - started


def image_size(engine: Engine, ref: str) -> int:
    return int(json.loads(engine.podman("image", "inspect", ref).stdout)[0]["Size"])


def layers(engine: Engine, registry: RegistryProcess, ref: str, repo: str) -> dict[str, int]:
    """Pushes REF as repo:1 and returns its layers' digests and compressed sizes from the manifest."""
    engine.podman("push", "--tls-verify=false", ref, f"docker://{registry.host}/{repo}:1", timeout=1800)
    manifest = _manifest(registry, repo)
    return {layer["digest"]: int(layer["size"]) for layer in manifest["layers"]}


def _manifest(registry: RegistryProcess, repo: str) -> dict[str, object]:
    with registry._open(f"/v2/{repo}/manifests/1", headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                                                      "application/vnd.oci.image.manifest.v1+json"}) as response:
        return dict(json.load(response))


def measure_tree(engine: Engine, registry: RegistryProcess, bytes_: TreeBytes, images: tuple[str, ...]) -> None:
    tree = load_tree(str(ROOT / "image-tree"))
    pushed: dict[str, dict[str, int]] = {}
    for name in images:
        ref = f"{bytes_.prefix}/{name}:1.0.0"
        bytes_.size[name] = image_size(engine, ref)
        pushed[name] = layers(engine, registry, ref, f"{bytes_.prefix.rsplit('/', 1)[-1]}/{name}")
        bytes_.pushed[name] = sum(pushed[name].values())
        parent = tree.images[name].image.parent if name in tree.images else None
        shared = pushed.get(parent, {}) if parent else {}
        bytes_.added[name] = sum(size for digest, size in pushed[name].items() if digest not in shared)
        log(f"{ref}: {bytes_.size[name] / MB:.0f} MB, {bytes_.pushed[name] / MB:.0f} MB pushed")


def app_update(engine: Engine, registry: RegistryProcess, work: Path) -> dict[str, float]:
    """Two versions of the example jar on the slim jre-17, built without a layer cache as CI builds
    them: the compressed bytes of version 2 that a node with version 1 (and so the base) lacks."""
    refs, artifact = {}, 0
    for version in (1, 2):
        source = work / f"source-v{version}" / "hello-jar"
        shutil.copytree(ROOT / "examples" / "apps" / "hello-jar", source)
        if version == 2:  # one changed class
            java = next((source / "src").rglob("*.java"))
            java.write_text(java.read_text().replace("started on port", "started (v2) on port"))
        context = work / f"v{version}" / "hello-jar"
        artifact = compile_app(source, context, "jar").stat().st_size
        out = work / f"gen-v{version}"
        engine.gen("app", str(context / "app.yaml"), "-o", str(out), "--tag", f"v{version}")
        refs[version] = f"localhost/apps/hello-jar:v{version}"
        engine.podman("build", "--no-cache", "--format", "docker", "-t", refs[version], "-f", str(out / "Dockerfile"), str(context))
    base = layers(engine, registry, f"{SLIM_PREFIX}/jre-17:1.0.0", "app-base/jre-17")
    v1 = layers(engine, registry, refs[1], "apps/hello-jar-v1")
    v2 = layers(engine, registry, refs[2], "apps/hello-jar-v2")
    config = sum(p.stat().st_size for p in (ROOT / "examples" / "apps" / "hello-jar" / "conf.d").rglob("*") if p.is_file())
    return {"pulled": sum(size for digest, size in v2.items() if digest not in v1),
            "app_layers": sum(size for digest, size in v2.items() if digest not in base),
            "artifact": artifact, "config": config, "limit": artifact + config + MB,
            "base_shared": float(all(digest in v2 for digest in base))}


def run(engine: Engine, work: Path, slim_seconds: float, today_seconds: float) -> str:
    """Measures both built trees and the app update; returns the markdown section."""
    registry = RegistryProcess("bench", work / "registry")
    registry.start()
    try:
        slim, today = TreeBytes(SLIM_PREFIX, slim_seconds), TreeBytes(TODAY_PREFIX, today_seconds)
        measure_tree(engine, registry, slim, IMAGES)
        measure_tree(engine, registry, today, IMAGES)
        update = app_update(engine, registry, work)
    finally:
        registry.stop()
    return section(slim, today, update)


def section(slim: TreeBytes, today: TreeBytes, update: dict[str, float]) -> str:
    tree = load_tree(str(ROOT / "image-tree"))
    rows = ["| base | today | slim | budget | verdict | pushed today | pushed slim | slim adds to its parent |",
            "|---|---|---|---|---|---|---|---|"]
    for name in IMAGES:
        budget = tree.images[name].image.size_budget_mb
        verdict = "PASS" if budget is not None and slim.size[name] <= budget * MB else "FAIL"
        rows.append(f"| `{name}` | {today.size[name] / MB:.0f} MB | **{slim.size[name] / MB:.0f} MB** | {budget} MB | {verdict} | "
                    f"{today.pushed[name] / MB:.0f} MB | {slim.pushed[name] / MB:.0f} MB | {slim.added[name] / MB:.1f} MB |")
    ok = update["pulled"] <= update["limit"]
    return "\n".join([
        BEGIN, "## Image bytes (issue 22)", "",
        "`.venv/bin/python bench/java_start.py` (bench/image_size.py): both trees built in one private podman store; "
        "sizes uncompressed (podman image inspect), pushed bytes compressed (the layers' sizes in the manifest of a "
        "push to an empty docker-registry on 127.0.0.1).", "", *rows, "",
        f"Cold build of the whole tree ({len(IMAGES)} images, empty image store, root filesystems from the cache): "
        f"today {today.build_seconds:.0f} s, slim {slim.build_seconds:.0f} s.", "",
        f"A new version of the example jar (one changed class), built without a layer cache: a node that has version 1 "
        f"pulls **{update['pulled'] / MB:.3f} MB** (the app's layers are {update['app_layers'] / MB:.3f} MB; "
        f"artifact {update['artifact'] / 1e3:.1f} kB + config {update['config'] / 1e3:.1f} kB + 1 MB = {update['limit'] / MB:.3f} MB: "
        f"{'PASS' if ok else 'FAIL'}); every base layer is shared: {bool(update['base_shared'])}.",
        END,
    ])


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else ""
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(doc)


def build_both(engine: Engine, today_source: Path) -> tuple[float, float]:
    """Builds the slim tree (this checkout) and today's (baseline_generator's checkout) from an
    empty store; returns their cold build seconds."""
    CACHE.mkdir(parents=True, exist_ok=True)
    slim = tree_build(engine, images=IMAGES)
    log(f"slim tree built in {slim.seconds:.0f} s")
    import_roots(engine)
    today = build_today(engine, today_source, IMAGES)
    log(f"today's tree built in {today:.0f} s")
    return slim.seconds, today


if __name__ == "__main__":
    import tempfile

    from tests.podman_engine import private_engine, remove_engine

    bench_engine = private_engine(prefix="k8sjb-image-size-")
    try:
        with tempfile.TemporaryDirectory(prefix="image-size-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
            seconds = build_both(bench_engine, baseline_generator(Path(tmp)))
            result = run(bench_engine, Path(tmp), *seconds)
            print(result)
            if "--no-docs" not in sys.argv:
                write_doc(result)
    finally:
        remove_engine(bench_engine)
