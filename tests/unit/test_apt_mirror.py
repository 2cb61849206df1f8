"""The debootstrap mirror comes from the machine's apt sources, never from a name in the repo."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.podman_engine import apt_mirror


def write(apt: Path, name: str, text: str) -> None:
    (apt / name).parent.mkdir(parents=True, exist_ok=True)
    (apt / name).write_text(text)


def test_one_line_sources_skip_security_and_options(tmp_path: Path) -> None:
    write(tmp_path, "sources.list", "# local mirror\n"
          "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian-security bookworm-security main\n"
          "deb-src http://src.example/debian bookworm main\n"
          "deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert apt_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_deb822_sources_skip_disabled_stanzas(tmp_path: Path) -> None:
    write(tmp_path, "sources.list.d/debian.sources",
          "Types: deb\nEnabled: no\nURIs: http://old.example/debian\nSuites: bookworm\n\n"
          "Types: deb-src deb\nURIs: http://new.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert apt_mirror(str(tmp_path)) == "http://new.example/debian"


def test_no_source_is_an_error_naming_the_place(tmp_path: Path) -> None:
    write(tmp_path, "sources.list.d/other.list.disabled", "deb http://x.example/debian bookworm main\n")
    with pytest.raises(AssertionError, match=r"no Debian mirror in .*sources.list"):
        apt_mirror(str(tmp_path))


def test_this_machine_has_one() -> None:
    assert apt_mirror().startswith(("http://", "https://", "file:/"))
