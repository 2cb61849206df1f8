"""Shared fixtures. In CI (CI=true) a missing tool fails the test instead of skipping it:
a missing tool is an install step for scripts/install-deps.sh, never a reason to skip."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.leaks import no_leftover_processes  # noqa: F401 - autouse: no test leaves a process running

T = TypeVar("T")

# The `bootstrap` console script of this venv.
BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))

# The podman engine, root image and tree build: session fixtures shared by the container and pod tiers.
pytest_plugins = ("tests.podman_engine",)

IN_CI = os.environ.get("CI") == "true"

# Each folder of tests/ is a tier, and every test in it gets the tier's marker, so `-m` selects by
# tier (`-m "not container and not pod"`). A test file outside a tier folder is an error.
TIERS = ("unit", "gen", "lint", "chart", "process", "fault", "container", "pod", "jvm")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in a tier folder, one of {', '.join(TIERS)}")
        item.add_marker(getattr(pytest.mark, tier))


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


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick, on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, str] | None:
    """(status, body, Content-Type) of GET http://127.0.0.1:PORT/PATH, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def http_code(port: int, path: str) -> int | None:
    answer = http_get(port, path)
    return None if answer is None else answer[0]


def write_file(path: Path, text: str) -> Path:
    """Writes text to path, creating its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def app_tree(root: Path, envs: tuple[str, ...] = ("dev", "qa"), *, app_name: str = "demo", app_env: str = "qa",
             pod_ip: str | None = "10.0.0.7", settings_text: str = "") -> dict[str, str]:
    """An APP_HOME under root with conf.d/common/logback.xml and conf.d/<env>/app.properties for
    each env, an empty log root and a settings file; returns the environment `bootstrap` needs
    (no POD_IP when pod_ip is None: the agent then finds the IP itself)."""
    home = root / "app"
    for env in envs:
        write_file(home / "conf.d" / env / "app.properties", f"env={env}\n")
    write_file(home / "conf.d" / "common" / "logback.xml", "<configuration/>\n")
    (root / "logs").mkdir()
    write_file(root / "bootstrap.yaml", settings_text)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_NAME": app_name,
        "APP_ENV": app_env,
        "APP_HOME": str(home),
        "BOOTSTRAP_LOG_ROOT": str(root / "logs"),
        "BOOTSTRAP_RUN_DIR": str(root / "run"),
        "BOOTSTRAP_CONFIG": str(root / "bootstrap.yaml"),
    }
    if pod_ip is not None:
        env["POD_IP"] = pod_ip
    return env


def run_bootstrap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bootstrap ARGS` to completion, output captured as text."""
    return subprocess.run([BOOTSTRAP, *args], env=env, capture_output=True, text=True, timeout=30)


def modules_after(imports: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of `candidates` a fresh interpreter has loaded after running the statement `imports`."""
    code = f"import sys\n{imports}\nprint(' '.join(m for m in {candidates!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.split()
