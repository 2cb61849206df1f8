from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.prereq import require, require_root, require_tool

sys.path.insert(0, str(REPO / "bench"))
import jvmlab  # noqa: E402


@pytest.fixture(scope="session")
def classes() -> Path:
    """The workloads of bench/jvm/, compiled once into .cache/ (recompiled when a source changes)."""
    require_root()
    require_tool("javac")
    require_tool("unshare")
    require(jvmlab.MEMORY_ROOT.is_dir(), "cgroup v1 memory controller is not mounted at /sys/fs/cgroup/memory")
    return jvmlab.compile_workloads(REPO / ".cache" / "jvm-workloads")
