"""Generation throughput: `dockerfile-gen batch` over 10,000 specs, one and several processes.

The specs are the examples (every type and feature) under 10,000 distinct names, each with its own
conf.d/. Prints specs/s for one worker and for every CPU, and the share of time per phase for one
worker, so a change to the hot path shows up here.

    .venv/bin/python bench/gen_throughput.py [--count N] [--jobs N]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dockerfile_gen.generate import Options, batch  # noqa: E402
from dockerfile_gen.tree import load_tree  # noqa: E402


def make_specs(target: Path, count: int) -> None:
    examples = sorted((REPO / "examples" / "apps").glob("*/app.yaml"))
    docs = [yaml.safe_load(p.read_text()) for p in examples]
    confs = [sorted(q.relative_to(p.parent) for q in p.parent.rglob("*") if q.is_file() and q.name != "app.yaml" and q.suffix != ".java") for p in examples]
    for i in range(count):
        k = i % len(docs)
        doc = dict(docs[k], name=f"{docs[k]['name']}-{i:05d}")
        app = target / f"app-{i:05d}"
        app.mkdir(parents=True)
        (app / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        for rel in confs[k]:
            dest = app / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(examples[k].parent / rel, dest)


def run(apps: Path, out: Path, jobs: int) -> float:
    tree = load_tree(str(REPO / "image-tree"))
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    # The examples ship no built artifacts: their pipelines build them (--allow-missing-artifact).
    report = batch(str(apps), str(out), tree, Options(allow_missing_artifact=True), jobs=jobs)
    elapsed = time.perf_counter() - started
    assert not report.failures, report.failures[:3]
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile", action="store_true", help="print the top functions of the one-worker run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gen-bench-") as tmp:
        apps, out = Path(tmp) / "apps", Path(tmp) / "out"
        t0 = time.perf_counter()
        make_specs(apps, args.count)
        print(f"setup: {args.count} specs with conf.d trees in {time.perf_counter() - t0:.1f}s")
        results = {}
        for jobs in sorted({1, args.jobs}):
            if jobs == 1 and args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
            elapsed = run(apps, out, jobs)
            if jobs == 1 and args.profile:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
            results[jobs] = elapsed
            files = sum(len(f) for _, _, f in os.walk(out))
            print(f"jobs={jobs}: {args.count} specs ({files} files) in {elapsed:.2f}s = {args.count / elapsed:,.0f} specs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
