"""`bootstrap logs prune`: its options, the one-shot run and the periodic loop of the node-logs
chart; the pass itself is bootstrap.node.prune, its metrics bootstrap.node.metrics.

Never imported by `bootstrap run`: it runs on the node side, in its own container.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping

from bootstrap import log, sizes
from bootstrap.errors import EX_CONFIG, BootstrapError, UsageError
from bootstrap.node.logroot import escape, write_line
from bootstrap.node.metrics import Metrics
from bootstrap.node.prune import Options, Report, run_pass

USAGE = """usage: bootstrap logs prune --root DIR [--keep-days N] [--max-bytes SIZE]
                           [--compress-after-days N] [--dry-run]
                           [--metrics-file PATH] [--every SECONDS [--metrics-port PORT]]"""
EX_ERRORS = 1  # the pass ran, but some files or directories could not be handled
FLAGS = ("--root", "--keep-days", "--max-bytes", "--compress-after-days", "--metrics-file", "--every",
         "--metrics-port", "--metrics-address")


MAX_BYTES = 2**63 - 1  # 8Ei less one byte: the largest size a file system reports


def parse_size(text: str) -> int:
    """--max-bytes as a Kubernetes quantity (bootstrap.sizes): 10G = 10×1000³, 500Mi = 500×1024²;
    a fraction is fine when it makes whole bytes (1.5Ki = 1536), never rounded (0.4 is refused)."""
    exact = sizes.exact_quantity(text)
    if exact is None:
        raise UsageError(f"--max-bytes={text[:40]!r} is not a size; use {sizes.QUANTITY_HELP}")
    numerator, denominator = exact
    if numerator // denominator > MAX_BYTES:
        raise UsageError(f"--max-bytes={text[:40]!r} is too large; give at most {MAX_BYTES} bytes (8Ei - 1)")
    if numerator % denominator:
        raise UsageError(f"--max-bytes={text[:40]!r} is not a whole number of bytes; give bytes, or a "
                         "fraction of a unit that makes whole bytes (1.5Ki = 1536)")
    return numerator // denominator


def parse_number(flag: str, text: str, minimum: float = 0.0, maximum: float = 1e9) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not minimum <= value <= maximum:  # also rejects nan
        raise UsageError(f"{flag}={text[:40]!r} must be a number from {minimum:g} to {maximum:g}, e.g. {flag} 7")
    return value


def parse(args: list[str]) -> tuple[Options, dict[str, str]]:
    values: dict[str, str] = {}
    dry_run = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--dry-run":
            dry_run = True
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if name not in FLAGS:
            raise UsageError(f"unknown option {escape(arg)!r} for logs prune; see 'bootstrap logs prune --help'")
        if name in values:
            raise UsageError(f"{name} is given twice; give it once")
        if not eq:
            if i + 1 >= len(args):
                raise UsageError(f"{name} needs a value, e.g. {name} {'/data/logs' if name == '--root' else '7'}")
            value = args[i + 1]
            i += 1
        values[name] = value
        i += 1
    if "--root" not in values:
        raise UsageError("--root is required: the node's log root, e.g. --root /data/logs")
    if "--metrics-port" in values and "--every" not in values:
        raise UsageError("--metrics-port serves the metrics of a loop: give --every SECONDS too, or use "
                         "--metrics-file for a single pass")
    options = Options(
        root=values["--root"],
        keep_days=parse_number("--keep-days", values["--keep-days"]) if "--keep-days" in values else None,
        max_bytes=parse_size(values["--max-bytes"]) if "--max-bytes" in values else None,
        compress_after_days=(parse_number("--compress-after-days", values["--compress-after-days"])
                             if "--compress-after-days" in values else None),
        dry_run=dry_run,
    )
    if "--every" in values:
        parse_number("--every", values["--every"], 1.0, 366 * 86400.0)
    if "--metrics-port" in values:
        port = values["--metrics-port"]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--metrics-port={port!r} must be a TCP port, 1-65535")
    return options, values


def check_root(root: str) -> None:
    if not os.path.isdir(root):
        raise BootstrapError(f"--root {escape(root)} is not a directory; give the node's log root "
                             "(the hostPath the apps' log directories are on)", EX_CONFIG)


def main(args: list[str], environ: Mapping[str, str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE + "\n")
        return 0 if args else 64
    if args[0] != "prune":
        raise UsageError(f"unknown logs command {escape(args[0])!r}; use 'bootstrap logs prune --root DIR ...'")
    if args[1:2] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE + "\n")
        return 0
    options, values = parse(args[1:])
    check_root(options.root)
    if "--every" in values:
        return Loop(options, float(values["--every"]), values.get("--metrics-file"),
                    values.get("--metrics-port"), values.get("--metrics-address", ""),
                    environ.get("NODE_NAME", "")).run()
    report = one_pass(options)
    metrics = Metrics(options, environ.get("NODE_NAME", ""))
    metrics.add(report)
    written = metrics.write_file(values["--metrics-file"]) if "--metrics-file" in values else True
    return EX_ERRORS if report.errors or not written else 0


def one_pass(options: Options) -> Report:
    try:
        report = run_pass(options)
    except OSError as exc:  # the root itself: gone, or unreadable
        raise BootstrapError(f"cannot prune {escape(options.root)}: {exc.strerror}; check that the log root "
                             "exists and is mounted read-write", EX_CONFIG) from None
    if not report.skipped:
        write_line(report.summary())
    return report


class Loop:
    """A pass every `period` seconds until SIGTERM/SIGINT; a pass in progress finishes first."""

    def __init__(self, options: Options, period: float, metrics_file: str | None, port: str | None,
                 address: str, node: str) -> None:
        self.options, self.period, self.metrics_file = options, period, metrics_file
        self.port, self.address, self.node = port, address, node
        self.stop = threading.Event()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _sig, _frame: self.stop.set())
        metrics = Metrics(self.options, self.node)
        if self.port:
            metrics.serve(self.address, int(self.port))
        log.info(f"pruning {escape(self.options.root)} every {self.period:g}s")
        while not self.stop.is_set():
            try:
                metrics.add(one_pass(self.options))
            except BootstrapError as exc:  # the root vanished or went read-only: try again next period
                log.error(str(exc))
                metrics.failed()
            if self.metrics_file:
                metrics.write_file(self.metrics_file)
            self.stop.wait(self.period)
        return 0
