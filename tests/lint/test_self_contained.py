"""The project stands on its own: its docs hold the contract, and nothing cites a design document
or a folder outside the repository."""
from __future__ import annotations

import subprocess

from tests.support.paths import REPO

OUTSIDE = ("DESIGN" + ".md", "../" + "shared/")


def test_nothing_cites_a_document_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    assert len(files) > 100, "git ls-files found the repository's files"
    cited = []
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.is_file() and not path.is_symlink():
            text = path.read_bytes().decode("utf-8", errors="replace")
            cited += [f"{name.decode()}: {word}" for word in OUTSIDE if word in text]
    assert cited == []
