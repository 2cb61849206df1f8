"""The fault tier: the real `bootstrap` as PID 1 on disks that are full or read-only, and real
processes fed hostile input. Every mount lives in a private mount namespace made for one agent
(`unshare --mount --propagation private`), so nothing is seen outside it and nothing is left
behind when it ends; the test reaches the agent's files through /proc/PID/root."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

from tests.support.agent import Agent
from tests.support.apptree import app_tree
from tests.support.paths import BOOTSTRAP, REPO
from tests.support.prereq import require_root, require_tool
from tests.support.waiting import wait_until

PRIVATE_MOUNTS = str(REPO / "tests" / "support" / "apps" / "private_mounts.py")
ENOSPC_TEXT = "No space left on device"
EROFS_TEXT = "Read-only file system"


class FaultAgent(Agent):
    """`bootstrap run` as PID 1 of a new PID namespace, inside a private mount namespace with the
    tmpfs mounts, fillers and read-only remounts the test asked for."""

    def __init__(self, command: list[str], env: dict[str, str], tmpfs: dict[str, str], fill: dict[str, int],
                 read_only: list[str], copy_out: Path) -> None:
        require_root()
        wrapper = [require_tool("unshare"), "--mount", "--propagation", "private", sys.executable, PRIVATE_MOUNTS]
        for directory, size in tmpfs.items():
            wrapper += ["--tmpfs", f"{directory}:{size}"]
        for directory, free in fill.items():
            wrapper += ["--fill", f"{directory}:{free}"]
        for directory in read_only:
            wrapper += ["--ro", directory]
        wrapper += ["--copy-out", str(copy_out), "--", require_tool("unshare"), "--pid", "--fork", "--mount-proc",
                    BOOTSTRAP, "run", "--", *command]
        super().__init__(wrapper, env, pid1=False)
        self.env = env
        self.copy_out = copy_out
        self.host_run_dir = env["BOOTSTRAP_RUN_DIR"]
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        """The host pid of bootstrap (PID 1 in its namespace): the child of `unshare --pid --fork`."""
        def find() -> int | None:
            for proc in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    if proc.name() != "unshare" and psutil.Process(proc.ppid()).name() == "unshare":
                        return proc.pid
                except psutil.NoSuchProcess:
                    continue
            return None
        if self._pid is None:
            self._pid = wait_until(find, timeout=15)
        return self._pid

    def view(self, path: str) -> Path:
        """A path as the agent sees it, through its mount namespace."""
        return Path(f"/proc/{self.pid}/root{path}")

    def status(self) -> dict[str, Any]:
        self.run_dir = self.view(self.host_run_dir)
        return super().status()

    def counters(self) -> dict[str, Any]:
        self.run_dir = self.view(self.host_run_dir)
        return super().counters()

    def probe(self, *args: str) -> int:
        """`bootstrap probe` as the kubelet runs it, inside the agent's mount namespace."""
        return subprocess.run([require_tool("nsenter"), "--target", str(self.pid), "--mount", BOOTSTRAP, "probe",
                               *args], env={**self.env}, capture_output=True, check=False, timeout=30).returncode

    def remount_read_only(self, path: str) -> None:
        subprocess.run([require_tool("nsenter"), "--target", str(self.pid), "--mount", "mount", "-o",
                        "remount,ro", path], check=True, timeout=30)

    def err_lines(self, text: str) -> list[str]:
        return [line for line in self.err if text in line]


def fill_up(directory: Path) -> Path:
    """Writes `directory`/.filler until the filesystem is full; returns its path."""
    filler = directory / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                if os.write(fd, b"\0" * 65536) == 0:
                    break
            except OSError:
                break
    finally:
        os.close(fd)
    return filler


FaultStart = Callable[..., FaultAgent]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = app_tree(tmp_path)
    (tmp_path / "termination-log").write_text("")
    return {**base, "BOOTSTRAP_TERMINATION_LOG": str(tmp_path / "termination-log")}


@pytest.fixture
def fault_start(env: dict[str, str], tmp_path: Path) -> Iterator[FaultStart]:
    """fault_start(app_args, tmpfs={dir: size}, fill={dir: free_bytes}, read_only=[dir], **extra_env)."""
    agents: list[FaultAgent] = []

    def _start(command: list[str], tmpfs: dict[str, str] | None = None, fill: dict[str, int] | None = None,
               read_only: list[str] | None = None, **extra: str) -> FaultAgent:
        agent = FaultAgent(command, {**env, **extra}, tmpfs or {}, fill or {}, read_only or [],
                           tmp_path / f"left-behind-{len(agents)}")
        agents.append(agent)
        return agent

    yield _start
    for agent in agents:
        agent.kill()
    # Every mount lived in the agents' private namespaces: none is seen here, none outlives them.
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert not [line for line in mounts if str(tmp_path) in line]
