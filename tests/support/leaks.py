"""No test leaves a process behind: `no_leftover_processes`, an autouse fixture wired from
tests/conftest.py, fails the test that does and kills what it left.

How a test's processes are known, without touching anyone else's: for the test's duration
TEST_LEAK_TAG=<unique> is in os.environ, so every process started from the test inherits it, and it
is added to the explicit `env` of every subprocess.Popen (the agents get an environment of their
own). After the test (and its fixtures' teardowns), a process started during the test whose
environment carries the tag is left over; so is a child of pytest itself that still runs (a fork
without exec shows pytest's environment in /proc, without the tag). Those still there after GRACE
seconds, awaited by polling, are killed and fail the test.

Only processes started during the test are looked at, and only tagged ones or pytest's own
children are killed. Session and module fixtures start theirs before the tag is set. In the tiers
that drive podman (container, pod, jvm) explicit environments are left untagged: podman's own
processes (conmon, netavark's aardvark-dns) may outlive a test by design and serve the session.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TAG = "TEST_LEAK_TAG"
# A process started with TEST_LEAK_TAG=fixture belongs to a fixture that outlives the test which
# (re)started it, such as a registry a test kills and starts again: it is not a leftover.
FIXTURE_OWNED = {TAG: "fixture"}
FIXTURE_MARKER = f"\0{TAG}=fixture\0".encode()
GRACE = 5.0  # seconds for a test's processes to finish dying after its teardown
POLL = 0.05
PODMAN_TIERS = frozenset({"container", "pod", "jvm"})
TESTS = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_serial = itertools.count()


def boot_ticks() -> int:
    """Now, in the unit of /proc/PID/stat's starttime: clock ticks since boot."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLOCK_TICKS)


def stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0].decode(), int(fields[19])


def carries(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in b"\0" + fh.read()
    except OSError:
        return False


def leftovers(tag: str, since: int) -> list[int]:
    """Running processes started at or after `since` (boot ticks) that carry the tag or are
    children of this process."""
    me, marker = os.getpid(), f"\0{TAG}={tag}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        info = stat(pid)
        if info is None or info[1] in ("Z", "X") or info[2] < since:
            continue
        if (info[0] == me or carries(pid, marker)) and not carries(pid, FIXTURE_MARKER):
            found.append(pid)
    return found


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            command = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = "?"
    return f"{pid} ({command[:200]})"


class TaggedPopen:
    """Adds the tag to the explicit environment of every subprocess.Popen while installed."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.original = subprocess.Popen.__init__

    def __enter__(self) -> None:
        original, tag = self.original, self.tag

        def init(popen: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            if kwargs.get("env") is not None:
                kwargs["env"] = {**kwargs["env"], TAG: tag}
            original(popen, *args, **kwargs)

        subprocess.Popen.__init__ = init  # type: ignore[method-assign, assignment]

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen.__init__ = self.original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    tag = f"{os.getpid()}.{next(_serial)}"
    tier = Path(request.node.path).relative_to(TESTS).parts[0]
    since = boot_ticks() - 1
    saved = os.environ.get(TAG)
    os.environ[TAG] = tag
    tagged = TaggedPopen(tag)
    if tier not in PODMAN_TIERS:
        tagged.__enter__()
    try:
        yield
    finally:
        if tier not in PODMAN_TIERS:
            tagged.__exit__()
        if saved is None:
            del os.environ[TAG]
        else:
            os.environ[TAG] = saved
    deadline = time.monotonic() + GRACE
    while (left := leftovers(tag, since)) and time.monotonic() < deadline:
        time.sleep(POLL)
    if left:
        named = [describe(pid) for pid in left]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"the test left {len(left)} process(es) running, killed now: {'; '.join(named)}", pytrace=False)
