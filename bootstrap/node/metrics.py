"""The Prometheus metrics of `bootstrap logs prune`: one registry fed with each pass's Report,
written as a text file for node-exporter's textfile collector or served over HTTP by the loop.
"""
from __future__ import annotations

import threading
import time

from bootstrap import log
from bootstrap.errors import EX_CONFIG, BootstrapError
from bootstrap.node.logroot import escape
from bootstrap.rundir import write_atomic
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from bootstrap.node.prune import Options, Report


class Metrics:
    """bootstrap_logs_prune_* in a registry of its own, each with a `node` label (NODE_NAME, from the
    downward API) to join with the agents' bootstrap_info; prometheus_client is imported here only."""

    def __init__(self, options: Options, node: str = "") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.node = node

        def counter(name: str, doc: str, *labels: str) -> Any:
            return Counter(f"bootstrap_logs_prune_{name}", doc, ["node", *labels], registry=self.registry)

        def gauge(name: str, doc: str) -> Any:
            return Gauge(f"bootstrap_logs_prune_{name}", doc, ["node"], registry=self.registry).labels(node)

        self.passes = counter("passes", "Prune passes run, by result (ok, errors, skipped, failed).", "result")
        self.freed = counter("freed_bytes", "Bytes freed by removing and compressing.").labels(node)
        self.removed = counter("removed_dirs", "Dead log directories removed.").labels(node)
        self.compressed = counter("compressed_files", "Rotated log files gzipped.").labels(node)
        self.errors = counter("errors", "Files or directories a pass could not handle.").labels(node)
        self.live = gauge("live_dirs", "Live log directories (lock held) at the last pass.")
        self.dead = gauge("dead_dirs", "Dead log directories left after the last pass.")
        self.root = gauge("root_bytes", "Bytes used under the log root after the last pass.")
        self.cap = gauge("cap_bytes", "The --max-bytes cap (0: none).")
        self.cap_met = gauge("cap_met", "1 when the root was within the cap after the last pass (live dirs "
                                        "alone can exceed it).")
        self.duration = gauge("pass_seconds", "Wall time of the last pass.")
        self.last = gauge("last_pass_timestamp_seconds", "When the last pass ended.")
        self.cap.set(options.max_bytes or 0)
        self.cap_met.set(1)
        for result in ("ok", "errors", "skipped", "failed"):
            self.passes.labels(node, result)  # every series from the start, so rate() sees the first one

    def add(self, report: Report) -> None:
        with self.lock:
            if report.skipped:
                self.passes.labels(self.node, "skipped").inc()
                return
            self.passes.labels(self.node, "errors" if report.errors else "ok").inc()
            if report.dry_run:
                return  # a dry run changes nothing, so it moves no counter but the pass count
            self.freed.inc(report.freed_bytes)
            self.removed.inc(report.removed_dirs)
            self.compressed.inc(report.compressed_files)
            self.errors.inc(report.errors)
            self.live.set(report.live_dirs)
            self.dead.set(report.dead_dirs)
            self.root.set(report.root_bytes)
            self.cap_met.set(1 if report.cap_met else 0)
            self.duration.set(report.seconds)
            self.last.set(time.time())

    def failed(self) -> None:
        with self.lock:
            self.passes.labels(self.node, "failed").inc()

    def text(self) -> bytes:
        from prometheus_client.exposition import generate_latest

        with self.lock:
            return bytes(generate_latest(self.registry))

    def write_file(self, path: str) -> bool:
        """Atomically, for node-exporter's textfile collector (it reads *.prom only, never the
        temporary file); a failed write is logged, never fatal, and leaves no temporary file."""
        try:
            write_atomic(path, self.text())
            return True
        except OSError as exc:
            log.error(f"cannot write the metrics file {escape(path)}: {exc.strerror}; check that its "
                      "directory exists and is writable")
            return False

    def serve(self, address: str, port: int) -> Any:
        from prometheus_client import start_http_server

        try:
            return start_http_server(port, address, registry=self.registry)
        except OSError as exc:
            raise BootstrapError(f"--metrics-port {port}: cannot listen ({exc.strerror}); pick a free port",
                                 EX_CONFIG) from None
