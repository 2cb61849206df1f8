"""mypy --strict (settings in setup.cfg) over both packages."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    # dockerfile-gen/ is mapped to the package dockerfile_gen; give mypy that name through a link.
    (tmp_path / "dockerfile_gen").symlink_to(REPO / "dockerfile-gen")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"), "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "-p", "bootstrap", "-p", "dockerfile_gen"],
        cwd=tmp_path, env={"MYPYPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
