"""Shared fixtures. In CI (CI=true) a missing tool fails the test instead of skipping it:
a missing tool is an install step for scripts/install-deps.sh, never a reason to skip."""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail in CI, where nothing may skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (scripts/install-deps.sh installs it)")
    assert path is not None
    return path


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (PID namespaces, network namespaces, chown)")


def wait_until(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Polls fn until it returns something truthy; used where no event can be awaited directly."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {fn}")
        time.sleep(interval)
