#!/usr/bin/env python3
"""Start time to ready of the example jar and WAR on every Java base of the tree, slim against
today's bases in the same run (part of `make bench`): hello-jar on jre-17, jre-21 and jre-25;
hello-war on tomcat10 (Java 17) and tomcat10-jre21.

It builds both trees in one private podman storage (deleted at the end): the slim tree of this
checkout, with its roots made from the Debian mirror (cached in .cache/container), and today's tree
(bench/image_size.py BASELINE_REF, the last commit before the slim tree) with its own generator.
Each app is generated with the Java major rewritten, for both trees by the same generator (today's:
the apps' own layers are the same but for the app user the slim roots do not have, so only the base
differs), and every image is started RUNS times, one container at a time, the two trees interleaved. A run is measured from the
container's start (podman's StartedAt: runc has started PID 1) to the agent's `ready_at` in
status.json, so the figure is the agent's set-up, the JVM's (or Tomcat's) start and the readiness
check's latency; the harness's own polling adds nothing. Both timestamps come from the same clock.

Prints a table and rewrites the block between the markers in docs/dockerfile-gen.md; then measures
the image bytes of both trees (bench/image_size.py) and rewrites that section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import image_size  # noqa: E402

from tests.podman_engine import (  # noqa: E402  (the container tier's set-up, reused as is)
    Engine,
    compile_app,
    private_engine,
    remove_engine,
    start_to_ready,
)

CASES = (  # (app, artifact kind, Java major, the base the generator must choose)
    ("hello-jar", "jar", 17, "jre-17"),
    ("hello-jar", "jar", 21, "jre-21"),
    ("hello-jar", "jar", 25, "jre-25"),
    ("hello-war", "war", 17, "tomcat10"),
    ("hello-war", "war", 21, "tomcat10-jre21"),
)
DOC = ROOT / "docs" / "dockerfile-gen.md"
BEGIN, END = "<!-- java-start:begin -->", "<!-- java-start:end -->"


def log(message: str) -> None:
    print(f"[java-start] {message}", file=sys.stderr, flush=True)


def generate_app(work: Path, engine: Engine, app: str, kind: str, java: int, today: Path, prefix: str) -> tuple[Path, Path, str]:
    """Compiles one example and generates it on its Java major on the bases under `prefix`; returns
    (context, Dockerfile, base). Both trees' apps come from one generator (today's, in `today`), so
    their own layers are the same and only the base differs."""
    tree = prefix.rsplit("/", 1)[-1]
    context = work / tree / f"java{java}" / app  # the artifact is named after the directory
    context.parent.mkdir(parents=True, exist_ok=True)
    compile_app(ROOT / "examples" / "apps" / app, context, kind)
    spec = context / "app.yaml"
    spec.write_text(re.sub(r"(?m)^java: \d+$", f"java: {java}", spec.read_text()))
    out = work / f"gen-{tree}-{app}-{java}"
    engine.run(sys.executable, "-c", f"import sys; sys.path.insert(0, {str(today)!r}); from dockerfile_gen.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "--tree", str(generator_tree(today) if tree == "base" else today / "image-tree"),
               "--base-prefix", prefix,
               "app", str(spec), "-o", str(out), "--tag", "bench")
    dockerfile = out / "Dockerfile"
    base = re.search(r'io\.k8s-java-bootstrap\.base="([^"]+)"', dockerfile.read_text())
    assert base is not None, dockerfile
    return context, dockerfile, base.group(1)


def generator_tree(today: Path) -> Path:
    """Today's tree for generating the slim tree's apps: without the `app` user today's roots have
    and the slim roots do not, so the app's Dockerfile creates it (one small layer more)."""
    import yaml

    tree = today / "generator-tree"
    if not tree.exists():
        shutil.copytree(today / "image-tree", tree)
        for root in ("root.yaml", "root-trixie.yaml"):
            doc = yaml.safe_load((tree / root).read_text())
            doc.get("provides", {}).pop("users", None)
            (tree / root).write_text(yaml.safe_dump(doc))
    return tree


def one_run(engine: Engine, image: str, name: str, logs: Path, timeout: float = 180) -> float:
    engine.podman("run", "-d", "--name", name, "-e", "APP_ENV=qa", "-v", f"{logs}:/data/logs", image)
    try:
        deadline = time.monotonic() + timeout
        while engine.podman("exec", name, "test", "-e", "/run/bootstrap/ready", check=False).returncode != 0:
            state = engine.podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if state != "true" or time.monotonic() > deadline:
                raise RuntimeError(f"{name} never became ready: {engine.podman('logs', name, check=False).stderr[-2000:]}")
            time.sleep(0.2)  # only detects the end; the figure comes from the agent's ready_at
        return start_to_ready(engine, name)
    finally:
        engine.podman("rm", "--force", "--time", "0", name, check=False)


def table(results: dict[tuple[str, int, str, str], list[float]], runs: int) -> str:
    lines = [
        "| App | Base | Java | today: median start to ready | slim: median | slim / today | slim min–max |",
        "|---|---|---|---|---|---|---|",
    ]
    for app, java, base in dict.fromkeys((a, j, b) for a, j, b, _ in results):
        today, slim = statistics.median(results[(app, java, base, "today")]), statistics.median(results[(app, java, base, "slim")])
        spread = results[(app, java, base, "slim")]
        lines.append(f"| {app} | `{base}` | {java} | {today:.2f} s | **{slim:.2f} s** | {slim / today:.2f} | "
                     f"{min(spread):.2f}–{max(spread):.2f} s |")
    return "\n".join(lines) + f"\n\n{runs} runs each, one container at a time, the two trees interleaved."


def write_doc(text: str, command: str, load: str) -> None:
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {BEGIN} and {END} are missing")
    block = f"{BEGIN}\n`{command}` ({load}):\n\n{text}\n{END}"
    DOC.write_text(doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per app and base (default %(default)s)")
    parser.add_argument("--no-docs", action="store_true", help="print only; do not rewrite the docs")
    args = parser.parse_args()
    engine = private_engine(prefix="k8sjb-java-start-")
    try:
        started = time.monotonic()
        results: dict[tuple[str, int, str, str], list[float]] = {}
        with tempfile.TemporaryDirectory(prefix="java-start-", dir="/var/tmp") as tmp:
            work = Path(tmp)
            # Generate first, with each tree's generator: a wrong placement fails before the builds.
            today = image_size.baseline_generator(work)
            generated, images = {}, {}
            for app, kind, java, base in CASES:
                for tree, prefix in (("slim", image_size.SLIM_PREFIX), ("today", image_size.TODAY_PREFIX)):
                    context, dockerfile, chosen = generate_app(work, engine, app, kind, java, today, prefix)
                    if chosen != base:
                        raise SystemExit(f"{app} (java {java}, {tree}) was placed on {chosen}, expected {base}")
                    generated[(app, java, base, tree)] = (context, dockerfile)
            seconds = image_size.build_both(engine, today)
            for key, (context, dockerfile) in generated.items():
                images[key] = f"localhost/apps/{key[3]}-{key[0]}-java{key[1]}:bench"
                engine.podman("build", "--format", "docker", "-t", images[key], "-f", str(dockerfile), str(context))
            for run in range(args.runs):  # interleaved, so a burst of load hits every case alike
                for key, image in images.items():
                    logs = work / f"logs-{key[0]}-{key[1]}-{key[3]}-{run}"
                    logs.mkdir()
                    seconds_to_ready = one_run(engine, image, f"{key[3]}-{key[0]}-{key[1]}-{run}", logs)
                    results.setdefault(key, []).append(seconds_to_ready)
                    log(f"{key[0]} on {key[2]} ({key[3]}): {seconds_to_ready:.2f} s")
            load = f"load average {open('/proc/loadavg').read().split()[0]} at the end, {time.monotonic() - started:.0f} s in all"
            text = table(results, args.runs)
            print(text)
            sizes = image_size.run(engine, work, *seconds)
            print(sizes)
        if not args.no_docs:
            write_doc(text, f".venv/bin/python bench/java_start.py --runs {args.runs}", load)
            image_size.write_doc(sizes)
    finally:
        remove_engine(engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
