"""Running the real `bootstrap` console script, as PID 1 of a new PID namespace or as a plain
child (then it is a subreaper), and watching its output line by line."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.paths import BOOTSTRAP, REPO
from tests.support.prereq import require_root, require_tool

PRINT_SIGNALS = str(REPO / "tests" / "support" / "apps" / "print_signals.py")
APP = [sys.executable, PRINT_SIGNALS]


class Agent:
    """A running `bootstrap run`; stdout and stderr are collected by reader threads."""

    def __init__(self, cmd: list[str], env: dict[str, str], pid1: bool) -> None:
        if pid1:
            require_root()
            cmd = [require_tool("unshare"), "--pid", "--fork", "--mount-proc", *cmd]
        self.pid1 = pid1
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()
        self.run_dir = Path(env["BOOTSTRAP_RUN_DIR"])

    def _read(self, stream: Any, sink: list[str]) -> None:
        for raw in stream:
            with self._cond:
                sink.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float = 15.0, stream: str = "out") -> re.Match[str]:
        regex = re.compile(pattern)
        sink = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in sink:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                finished = self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)
                if remaining <= 0 or finished:
                    raise AssertionError(f"no line matching {pattern!r} on std{stream}; out={self.out[-20:]} "
                                         f"err={self.err[-20:]}")
                self._cond.wait(min(remaining, 0.2))

    @property
    def pid(self) -> int:
        """The host pid of the bootstrap process (unshare's child when it is PID 1)."""
        if not self.pid1:
            return self.proc.pid
        def child() -> int | None:
            kids = psutil.Process(self.proc.pid).children()
            return kids[0].pid if kids else None
        from tests.support.waiting import wait_until
        return wait_until(child, timeout=10)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def helpers(self) -> list[psutil.Process]:
        """bootstrap's children other than the app: the readiness checker."""
        app = self.status().get("pid")
        found = []
        for p in psutil.Process(self.pid).children():
            try:  # a replaced helper may be reaped between the listing and these reads
                if p.pid != app and p.status() != "zombie" and os.getpgid(p.pid) != p.pid:
                    found.append(p)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue
        return found

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.run_dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def counters(self) -> dict[str, Any]:
        """supervisor.json: what PID 1 counted (signals forwarded, zombies reaped, helper restarts)."""
        try:
            return json.loads((self.run_dir / "supervisor.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def records(log_root: str) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(Path(log_root).rglob(".bootstrap.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def which(name: str) -> str:
    return shutil.which(name) or name


def run_bootstrap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bootstrap ARGS` to completion, output captured as text."""
    return subprocess.run([BOOTSTRAP, *args], env=env, capture_output=True, text=True, timeout=30)


def modules_after(imports: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of `candidates` a fresh interpreter has loaded after running the statement `imports`."""
    code = f"import sys\n{imports}\nprint(' '.join(m for m in {candidates!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.split()
