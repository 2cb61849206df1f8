"""What to replicate: `replication.yaml` and the `replicate` flags, validated into one frozen Replication.

replication.yaml (every key optional except what the flags do not give):

    registries:                     # named endpoints, like Harbor's registry endpoints
      master:  {host: registry.offline:5000, insecure: true}
      offline: {host: mirror.offline:5000, ca_file: /etc/pki/offline-ca.crt}
      online:  {host: registry.example.com, authfile: /etc/replication/online-auth.json,
                client_cert: /etc/replication/client.crt, client_key: /etc/replication/client.key}
    from: master                    # a name above, or HOST[:PORT]
    to: [offline, online]
    repos: ["base/*", "apps/**"]    # globs: * and ? stay inside one path segment, ** crosses them
    prune: false                    # delete on the replicas what was copied there and is gone from the master

Flags override the file (`--to` and `--repo` replace its lists). `--state`, `--dry-run` and
`--min-age` (what prune may rely on and delete) are flags only. Every error names the field.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bootstrap.settings.bounded import FileKind, Limits
from dockerfile_gen import checks
from dockerfile_gen.errors import GenError
from dockerfile_gen.input_files import read_input
from dockerfile_gen.registry.endpoint import Endpoint

KEYS = frozenset("registries from to repos prune".split())
REGISTRY_KEYS = frozenset("host insecure ca_file client_cert client_key authfile".split())
MAX_FILE_BYTES = 256 << 10  # a replication.yaml is a few hundred bytes; refuse to parse megabytes
MAX_DEPTH = 8  # the schema is three levels deep
MAX_NODES = 10_000
# A registry host as image references spell it: a DNS name or IPv4 address, an optional port.
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?")
REGISTRY_NAME = re.compile(r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?")
# A repository glob: repository-name characters plus * ? and [...] classes.
GLOB_CHARS = re.compile(r"[a-z0-9._/*?\[\]!-]+")
AGE = re.compile(r"([0-9]{1,9}(?:\.[0-9]+)?)([smhd]?)")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RepoGlob:
    text: str
    pattern: re.Pattern[str]

    def matches(self, repo: str) -> bool:
        return self.pattern.fullmatch(repo) is not None


@dataclass(frozen=True)
class Replication:
    source: Endpoint
    targets: tuple[Endpoint, ...]
    repos: tuple[RepoGlob, ...]  # empty: every repository in the master's catalog
    prune: bool
    state_path: str | None = None  # the record of what was copied (dockerfile_gen.registry.state); None: none kept
    dry_run: bool = False  # list what prune would delete; copy and delete nothing
    min_age: float = 0.0  # seconds an entry must be gone from the master before prune deletes it

    def wants(self, repo: str) -> bool:
        return not self.repos or any(glob.matches(repo) for glob in self.repos)


def compile_glob(text: Any, where: str, key: str) -> RepoGlob:
    """`*` and `?` match inside one path segment, `**` across segments, `[abc]`/`[!abc]` one character."""
    value = checks.string(text, where, key)
    hint = "a repository glob is lower-case repository path characters with *, **, ? and [...] (e.g. base/* or apps/**)"
    if not GLOB_CHARS.fullmatch(value):
        checks.fail(where, key, f"{value!r} is not a repository glob: {hint}")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        checks.fail(where, key, f"{value!r} is not a repository glob: a path segment is empty ({hint})")
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if value.startswith("**", i):
            if value.startswith("***", i):
                checks.fail(where, key, f"{value!r} is not a repository glob: '***' ({hint})")
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = value.find("]", i + 2 if value.startswith("[!", i) else i + 1)
            if end < 0:
                checks.fail(where, key, f"{value!r} is not a repository glob: '[' at position {i + 1} is never closed ({hint})")
            body = value[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body or "/" in body or "[" in body:
                checks.fail(where, key, f"{value!r} is not a repository glob: bad character class [{value[i + 1:end]}] ({hint})")
            out.append(("[^/" if negate else "[") + re.escape(body).replace("\\-", "-") + "]")
            i = end + 1
        elif char in "]!":
            checks.fail(where, key, f"{value!r} is not a repository glob: stray {char!r} at position {i + 1} ({hint})")
        else:
            out.append(re.escape(char))
            i += 1
    try:
        return RepoGlob(value, re.compile("".join(out)))
    except re.error as exc:  # e.g. a reversed range [z-a]
        checks.fail(where, key, f"{value!r} is not a repository glob: {exc} ({hint})")


def load_file(path: str) -> Mapping[str, Any]:
    """Reads replication.yaml with the agent's bounded reader: size, nesting depth, node count, no aliases."""
    kind = FileKind(label="replication config", content="a replication config",
                    size_hint="a replication config is a few lines", depth_hint="the schema is three levels deep")
    data = read_input(path, kind, Limits(max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH, max_nodes=MAX_NODES))
    if data is None:
        return {}
    return checks.mapping(data, path, "")


def _endpoint(name: str, doc: Any, where: str, key: str, insecure_default: bool) -> Endpoint:
    entry = checks.mapping(doc, where, key)
    checks.known_keys(entry, REGISTRY_KEYS, where, key)
    if "host" not in entry:
        checks.fail(where, f"{key}.host", "is required (HOST[:PORT] of the registry)")
    host = _host(entry["host"], where, f"{key}.host")
    insecure = entry.get("insecure", insecure_default)
    if not isinstance(insecure, bool):
        checks.fail(where, f"{key}.insecure", f"must be true or false (got {insecure!r})")
    files: dict[str, str | None] = {}
    for field in ("ca_file", "client_cert", "client_key", "authfile"):
        value = entry.get(field)
        if value is None:
            files[field] = None
            continue
        text = checks.string(value, where, f"{key}.{field}")
        text = os.path.join(os.path.dirname(where), text) if where and not os.path.isabs(text) else text
        if not os.path.isfile(text):
            checks.fail(where, f"{key}.{field}", f"{text!r} is not a readable file")
        files[field] = text
    if files["client_key"] and not files["client_cert"]:
        checks.fail(where, f"{key}.client_key", "needs client_cert as well")
    if insecure and any(files[f] for f in ("ca_file", "client_cert")):
        checks.fail(where, f"{key}.insecure", "is true, so TLS files (ca_file, client_cert) would be ignored: drop one or the other")
    return Endpoint(name=name, host=host, insecure=insecure, ca_file=files["ca_file"], client_cert=files["client_cert"],
                    client_key=files["client_key"], authfile=files["authfile"])


def _host(value: Any, where: str, key: str) -> str:
    text = checks.string(value, where, key)
    if "://" in text:
        checks.fail(where, key, f"{text!r}: give HOST[:PORT] without a scheme (plain HTTP is insecure: true / --insecure)")
    if not HOST.fullmatch(text) or (":" in text and not 1 <= int(text.rsplit(":", 1)[1]) <= 65535):
        checks.fail(where, key, f"{text!r} is not HOST[:PORT]")
    return text


def looks_like_host(text: str) -> bool:
    """Docker's rule for the first part of an image reference: a registry host has a '.' or a ':', or is localhost."""
    return "." in text or ":" in text or text == "localhost"


def _resolve(ref: Any, registries: Mapping[str, Endpoint], where: str, key: str, insecure: bool) -> Endpoint:
    text = checks.string(ref, where, key)
    if text in registries:
        return registries[text]
    if not looks_like_host(text):
        known = ", ".join(sorted(registries)) or "none defined"
        checks.fail(where, key, f"unknown registry {text!r}: not a name in replication.yaml's registries ({known}) "
                                "and not HOST[:PORT] (a host has a '.' or a ':PORT', or is localhost)")
    return Endpoint(name=_host(text, where, key), host=text, insecure=insecure)


def build(config_path: str | None, source: str | None, targets: Sequence[str], repos: Sequence[str],
          insecure: bool, prune: bool, source_host: str | None = None, state: str | None = None,
          dry_run: bool = False, min_age: str | None = None) -> Replication:
    """Merges the file (if any) and the flags; a flag replaces the file's value, and every value of the
    file is checked even when a flag replaces it. Messages name the file and key, or the flag.

    `source_host` is the registry a push just went to (`tree build --push … --replicate`): it is the
    master, and the file's `from`, when given, must name the same host."""
    doc: Mapping[str, Any] = load_file(config_path) if config_path else {}
    where = config_path or ""
    checks.known_keys(doc, KEYS, where, "")
    registries: dict[str, Endpoint] = {}
    for name, entry in checks.mapping(doc.get("registries") or {}, where, "registries").items():
        checks.matching(name, REGISTRY_NAME, "a registry name (lower-case letters, digits, - and _)", where, f"registries.{name}")
        registries[name] = _endpoint(name, entry, where, f"registries.{name}", insecure)
    file_from = _resolve(doc["from"], registries, where, "from", insecure) if doc.get("from") is not None else None
    file_to = _replicas(doc["to"], registries, where, "to", insecure) if doc.get("to") is not None else []
    file_repos = _globs(doc["repos"], where, "repos") if doc.get("repos") is not None else []
    file_prune = doc.get("prune", False)
    if not isinstance(file_prune, bool):
        checks.fail(where, "prune", f"must be true or false (got {file_prune!r})")

    master = _resolve(source, registries, "", "--from", insecure) if source else file_from
    if source_host is not None:
        if master is not None and master.host != source_host:
            checks.fail(*(("", "--from") if source else (where, "from")),
                        f"is {master.label}, but the push went to {source_host}: replication starts from the registry pushed to")
        named = [e for e in registries.values() if e.host == source_host]
        master = named[0] if named else Endpoint(name=source_host, host=source_host, insecure=insecure)
    if master is None:
        raise GenError("is required: the master registry to copy from (--from HOST[:PORT] or from: in replication.yaml)", "--from")

    replicas = _replicas(list(targets), registries, "", "--to", insecure) if targets else file_to
    if not replicas:
        raise GenError("is required: at least one replica (--to HOST[:PORT], repeated, or to: in replication.yaml)", "--to")
    for index, replica in enumerate(replicas):
        if replica.host == master.host:
            checks.fail(*(("", "--to") if targets else (where, f"to[{index}]")), f"{replica.label} is the master itself")
    globs = _globs(list(repos), "", "--repo") if repos else file_repos
    age = parse_age(min_age, "--min-age") if min_age is not None else 0.0
    if min_age is not None and not (prune or file_prune or dry_run):
        checks.fail("", "--min-age", "is for --prune (or --dry-run)")
    return Replication(source=master, targets=tuple(replicas), repos=tuple(globs), prune=prune or file_prune,
                       state_path=state, dry_run=dry_run, min_age=age)


def parse_age(text: str, key: str) -> float:
    """An age in seconds from 90s, 30m, 12h, 7d or 0."""
    found = AGE.fullmatch(text.strip())
    if not found:
        checks.fail("", key, f"{text!r} is not an age: give a number with s, m, h or d (e.g. 90m, 12h, 7d)")
    return float(found.group(1)) * AGE_UNITS[found.group(2) or "s"]


def _replicas(value: Any, registries: Mapping[str, Endpoint], where: str, key: str, insecure: bool) -> list[Endpoint]:
    """`to:` (a list, or one string) or the --to flags; file entries are named to[0], to[1], …"""
    replicas: list[Endpoint] = []
    for index, ref in enumerate(checks.string_list([value] if isinstance(value, str) else value, where, key)):
        item = f"{key}[{index}]" if where else key
        replica = _resolve(ref, registries, where, item, insecure)
        if replica.host in (r.host for r in replicas):
            checks.fail(where, item, f"{replica.label} is listed twice")
        replicas.append(replica)
    return replicas


def _globs(value: Any, where: str, key: str) -> list[RepoGlob]:
    items = checks.string_list(value, where, key)
    return [compile_glob(text, where, f"{key}[{index}]" if where else key) for index, text in enumerate(items)]
