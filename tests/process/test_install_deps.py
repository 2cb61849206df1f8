"""scripts/install-deps.sh on a machine where another apt process holds the locks, with apt-get
and dpkg-query replaced by recorders on PATH (nothing is installed), and the container tier's
check that names every missing tool."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.prereq import require_root

FAKE_APT_GET = """#!/bin/sh
echo "$*" >> "$CALLS"
if [ "$1" = update ] || [ "$2" = update ]; then
    n=$(cat "$LOCKED" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
        echo $((n - 1)) > "$LOCKED"
        echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
        exit 100
    fi
fi
exit 0
"""
FAKE_DPKG_QUERY = "#!/bin/sh\nexit 1\n"  # every package is missing


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The script and deps/ in a scratch checkout whose .venv is already up to date."""
    require_root()  # the script installs Debian packages only as root
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "install-deps.sh", root / "scripts")
    shutil.copytree(REPO / "deps", root / "deps")
    (root / "setup.cfg").write_text("")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text("#!/bin/sh\n")
    (root / ".venv" / "bin" / "python").chmod(0o755)
    for profile in ("demo", "all"):
        (root / ".venv" / f".deps-{profile}").touch()
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, text in (("apt-get", FAKE_APT_GET), ("dpkg-query", FAKE_DPKG_QUERY)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    return root


def run(checkout: Path, profile: str, locked: int, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls, lock = checkout.parent / "calls", checkout.parent / "locked"
    lock.write_text(str(locked))
    env = {**os.environ, "PATH": f"{checkout.parent / 'bin'}:{os.environ['PATH']}", "CALLS": str(calls),
           "LOCKED": str(lock), "APT_LOCK_POLL": "0.05", **extra}
    result = subprocess.run(["bash", str(checkout / "scripts" / "install-deps.sh"), profile], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_waits_for_the_lists_lock_and_the_dpkg_lock(checkout: Path) -> None:
    """A script that runs apt-get update once fails right after boot; install waits via DPkg::Lock::Timeout."""
    result, calls = run(checkout, "all", locked=3)
    assert result.returncode == 0, result.stderr
    assert "waiting up to 900s" in result.stdout
    assert [c.split()[0] for c in calls[:4]] == ["update"] * 4
    install = calls[4].split()
    assert install[:2] == ["install", "-y"] and "DPkg::Lock::Timeout=900" in install
    assert {"podman", "iptables", "netavark", "prometheus", "python3-venv"} <= set(install)


def test_gives_up_after_the_timeout(checkout: Path) -> None:
    result, calls = run(checkout, "all", locked=1000, APT_LOCK_TIMEOUT="2")
    assert result.returncode != 0
    assert "Could not get lock" in result.stderr
    assert not any(c.startswith("install") for c in calls)


def test_the_demo_profile_installs_only_the_demo_packages(checkout: Path) -> None:
    result, calls = run(checkout, "demo", locked=0)
    assert result.returncode == 0, result.stderr
    install = [c for c in calls if c.startswith("install")][0].split()
    packages = {w for w in install if not w.startswith("-") and "=" not in w} - {"install"}
    assert packages == {"python3", "python3-venv", "util-linux", "procps"}


def test_the_container_tier_names_every_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import podman_engine as container

    monkeypatch.setattr(shutil, "which", lambda name: None if name in ("iptables", "skopeo") else f"/usr/bin/{name}")
    monkeypatch.setattr(container, "NETAVARK_PATHS", ("/nonexistent/netavark",))
    monkeypatch.delenv("CI", raising=False)
    reported: list[str] = []
    monkeypatch.setattr(container, "require", lambda ok, why: reported.append(why) if not ok else None)
    container.require_tools()
    assert len(reported) == 1
    assert "skopeo (skopeo), iptables (iptables), netavark (netavark)" in reported[0]
