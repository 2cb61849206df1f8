"""The Debian mirror, read from this machine's apt sources: the one-line format
(/etc/apt/sources.list, sources.list.d/*.list) and deb822 (sources.list.d/*.sources).

A build network is often offline with a mirror of its own; the machine's apt sources already say
where it is. DEBIAN_MIRROR overrides the main archive (a URL such as http://HOST/debian). Used by
`tree build` (the image's apt steps read these sources, mounted for the build only) and by the
container tests (debootstrap's mirror). No mirror host name is written anywhere in the project.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dockerfile_gen.errors import GenError

OVERRIDE = "DEBIAN_MIRROR"
CODENAMES = {"debian-11": "bullseye", "debian-12": "bookworm", "debian-13": "trixie"}


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[Source]:
    """`deb [options] URI SUITE COMPONENT...` lines; deb-src and comments are skipped."""
    found = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            found.append(Source(words[0].rstrip("/"), words[1], tuple(words[2:])))
    return found


def parse_deb822(text: str) -> list[Source]:
    """Stanzas of `Field: value` lines separated by blank lines (sources.list(5), DEB822 style)."""
    found = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no" or "deb" not in stanza.get("types", "").split():
            continue
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                found.append(Source(uri.rstrip("/"), suite, tuple(stanza.get("components", "").split())))
    return found


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key = None
    for raw in text.splitlines() + [""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif raw[0] in " \t" and key is not None:  # a continuation line
            fields[key] += " " + raw.strip()
        elif ":" in raw:
            name, value = raw.split(":", 1)
            key = name.strip().lower()
            fields[key] = value.strip()
    return


def machine_sources(etc_apt: str = "/etc/apt") -> list[Source]:
    found: list[Source] = []
    one_line = [os.path.join(etc_apt, "sources.list")] + sorted(glob.glob(os.path.join(etc_apt, "sources.list.d", "*.list")))
    for path in one_line + sorted(glob.glob(os.path.join(etc_apt, "sources.list.d", "*.sources"))):
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            continue
        found += parse_deb822(text) if path.endswith(".sources") else parse_one_line(text)
    return found


def machine_codename(os_release: str = "/etc/os-release") -> str | None:
    try:
        with open(os_release, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def debian_sources(codename: str, environ: Mapping[str, str] = os.environ, etc_apt: str = "/etc/apt",
                   os_release: str = "/etc/os-release") -> list[Source]:
    """The Debian archive entries for `codename` (its release, -updates and -security suites).

    From the machine's sources for that codename; a machine on another release lends its
    entries with the suite renamed. DEBIAN_MIRROR replaces the main archive's URI."""
    sources = machine_sources(etc_apt)
    own = machine_codename(os_release)
    picked: list[Source] = []
    for name in (codename, own):
        if not name:
            continue
        suites = {name: codename, f"{name}-updates": f"{codename}-updates", f"{name}-security": f"{codename}-security"}
        picked = [Source(s.uri, suites[s.suite], s.components) for s in sources
                  if s.suite in suites and "main" in s.components]
        if picked:
            break
    override = environ.get(OVERRIDE, "").strip().rstrip("/")
    if override:
        security = [s for s in picked if s.suite.endswith("-security")]
        picked = [Source(override, codename, ("main",)), Source(override, f"{codename}-updates", ("main",))] + security
    return picked


def debian_mirror(codename: str, environ: Mapping[str, str] = os.environ, etc_apt: str = "/etc/apt",
                  os_release: str = "/etc/os-release") -> str:
    """The main archive's URI (what debootstrap takes), or GenError saying how to set it."""
    for source in debian_sources(codename, environ, etc_apt, os_release):
        if source.suite == codename:
            return source.uri
    raise GenError(f"no Debian mirror for {codename} in this machine's apt sources ({etc_apt}); "
                   f"set {OVERRIDE}=URL of a Debian archive", OVERRIDE)


def sources_list(codename: str, environ: Mapping[str, str] = os.environ, etc_apt: str = "/etc/apt",
                 os_release: str = "/etc/os-release") -> str | None:
    """A sources.list for an image build, or None when the machine names no Debian archive."""
    entries = debian_sources(codename, environ, etc_apt, os_release)
    return "".join(f"{s.line()}\n" for s in entries) or None
