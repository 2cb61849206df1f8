#!/usr/bin/env python3
"""Start time to ready of the example jar and WAR on every Java base of the tree (part of
`make bench`): hello-jar on jre-17, jre-21 and jre-25; hello-war on tomcat10 (Java 17) and
tomcat10-jre21.

It builds the tree the way the container tier does (debootstrap roots from .cache/container, a
private podman storage that is deleted at the end), generates each app from its spec with the Java
major rewritten, and starts each image RUNS times, one container at a time. A run is measured from
the container's start (podman's StartedAt: runc has started PID 1) to the agent's `ready_at` in
status.json, so the figure is the agent's set-up, the JVM's (or Tomcat's) start and the readiness
check's latency (25 ms polling until the first ready); the harness's own polling adds nothing.
Both timestamps come from the same clock. The JVM flags are the example specs' own.

Prints a table and rewrites the block between the markers in docs/dockerfile-gen.md.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.podman_engine import (  # noqa: E402  (the container tier's set-up, reused as is)
    Engine,
    compile_app,
    import_roots,
    private_engine,
    remove_engine,
    start_to_ready,
    tree_build,
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


def generate_app(work: Path, engine: Engine, app: str, kind: str, java: int) -> tuple[Path, Path, str]:
    """Compiles one example and generates it on its Java major; returns (context, Dockerfile, base)."""
    context = work / f"java{java}" / app  # the artifact is named after the directory
    context.parent.mkdir(parents=True, exist_ok=True)
    compile_app(ROOT / "examples" / "apps" / app, context, kind)
    spec = context / "app.yaml"
    spec.write_text(re.sub(r"(?m)^java: \d+$", f"java: {java}", spec.read_text()))
    out = work / f"gen-{app}-{java}"
    engine.gen("app", str(spec), "-o", str(out), "--tag", "bench")
    dockerfile = out / "Dockerfile"
    base = re.search(r'io\.k8s-java-bootstrap\.base="([^"]+)"', dockerfile.read_text())
    assert base is not None, dockerfile
    return context, dockerfile, base.group(1)


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


def table(results: dict[tuple[str, int, str], list[float]], runs: int) -> str:
    lines = [
        "| App | Base | Java | median start to ready | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for (app, java, base), times in results.items():
        lines.append(f"| {app} | `{base}` | {java} | **{statistics.median(times):.2f} s** | {min(times):.2f} s | {max(times):.2f} s |")
    return "\n".join(lines) + f"\n\n{runs} runs each, one container at a time."


def write_doc(text: str, command: str, load: str) -> None:
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC}: the markers {BEGIN} and {END} are missing")
    block = f"{BEGIN}\n`{command}` ({load}):\n\n{text}\n{END}"
    DOC.write_text(doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per app and base (default %(default)s)")
    parser.add_argument("--no-docs", action="store_true", help="print only; do not rewrite docs/dockerfile-gen.md")
    args = parser.parse_args()
    engine = private_engine(prefix="k8sjb-java-start-")
    try:
        started = time.monotonic()
        results: dict[tuple[str, int, str], list[float]] = {}
        with tempfile.TemporaryDirectory(prefix="java-start-") as tmp:
            work = Path(tmp)
            # Generate first: a wrong placement fails here, before the long tree build.
            generated = {}
            for app, kind, java, base in CASES:
                context, dockerfile, chosen = generate_app(work, engine, app, kind, java)
                if chosen != base:
                    raise SystemExit(f"{app} (java {java}) was placed on {chosen}, expected {base}")
                generated[(app, java, base)] = (context, dockerfile)
            import_roots(engine)
            built = tree_build(engine)
            log(f"tree built in {built.seconds:.0f} s")
            images = {}
            for key, (context, dockerfile) in generated.items():
                images[key] = f"localhost/apps/{key[0]}-java{key[1]}:bench"
                engine.podman("build", "--format", "docker", "-t", images[key], "-f", str(dockerfile), str(context))
            for run in range(args.runs):  # interleaved, so a burst of load hits every case alike
                for key, image in images.items():
                    logs = work / f"logs-{key[0]}-{key[1]}-{run}"
                    logs.mkdir()
                    seconds = one_run(engine, image, f"{key[0]}-{key[1]}-{run}", logs)
                    results.setdefault(key, []).append(seconds)
                    log(f"{key[0]} on {key[2]}: {seconds:.2f} s")
        load = f"load average {open('/proc/loadavg').read().split()[0]} at the end, {time.monotonic() - started:.0f} s in all"
        text = table(results, args.runs)
        print(text)
        if not args.no_docs:
            write_doc(text, f".venv/bin/python bench/java_start.py --runs {args.runs}", load)
    finally:
        remove_engine(engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
