"""The unit tier is pure logic in this process: a test here that starts a process fails, so the tier
stays fast and needs no root. Tests that run real processes belong in tests/process/."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(what: str) -> Callable[..., Any]:
        def call(*_args: Any, **_kwargs: Any) -> Any:
            pytest.fail(f"a unit test started a process ({what}); move it to tests/process/")
        return call

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("subprocess"))
    for name in ("fork", "posix_spawn", "posix_spawnp", "system", "execv", "execve", "execvp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"os.{name}"))
