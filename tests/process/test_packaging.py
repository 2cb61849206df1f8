"""The package installs both ways from a clean venv, and the console scripts work."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.agent import REPO

pytestmark = pytest.mark.process


@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-e"])
def test_clean_venv_install(tmp_path: Path, editable: bool) -> None:
    python = shutil.which("python3", path="/usr/bin") or "python3"
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info",
                                                               "__pycache__", ".cache", "out"))
    target = ["-e", str(source)] if editable else [str(source)]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *target],
                   check=True, timeout=600)
    version = subprocess.run([str(venv / "bin" / "bootstrap"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("bootstrap ")
    generator = subprocess.run([str(venv / "bin" / "dockerfile-gen"), "--help"], capture_output=True, text=True)
    assert generator.returncode == 0, generator.stderr
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import bootstrap, dockerfile_gen, yaml, psutil"],
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
