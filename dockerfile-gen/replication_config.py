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
    prune: false                    # delete tags on the replicas that the master no longer has

Flags override the file (`--to` and `--repo` replace its lists). Every error names the field.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from dockerfile_gen import checks
from dockerfile_gen.errors import GenError
from dockerfile_gen.registry import Endpoint

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
FLAG_FIELDS = {"from": "--from", "to": "--to", "repos": "--repo", "prune": "--prune"}


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
    """Reads replication.yaml with bounds: size, nesting depth, node count, and no aliases."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise GenError(f"cannot read: {exc.strerror}", path) from None
    if len(raw) > MAX_FILE_BYTES:
        raise GenError(f"is larger than {MAX_FILE_BYTES >> 10} KiB; a replication config is a few lines", path)
    try:
        _check_shape(raw, path)
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise GenError(f"not valid YAML: {at}{' '.join(str(exc.problem).split())[:200]}", path) from None
    except yaml.YAMLError as exc:
        raise GenError(f"not valid YAML: {' '.join(str(exc).split())[:200]}", path) from None
    if data is None:
        return {}
    return checks.mapping(data, path, "")


def _check_shape(raw: bytes, path: str) -> None:
    """Walks the YAML events before building anything: aliases (billion laughs) and deep nesting are refused."""
    depth = nodes = 0
    for event in yaml.parse(raw, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise GenError(f"line {line}: YAML anchors and aliases are not allowed here; write the value out", path)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise GenError(f"is nested deeper than {MAX_DEPTH} levels; the schema is three levels deep", path)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        nodes += 1
        if nodes > MAX_NODES:
            raise GenError(f"has more than {MAX_NODES} YAML nodes; a replication config is a few lines", path)


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
          insecure: bool, prune: bool, source_host: str | None = None) -> Replication:
    """Merges the file (if any) and the flags. `where` in messages is the file, or the flag's name.

    `source_host` is the registry a push just went to (`tree build --push … --replicate`): it is the
    master, and the file's `from`, when given, must name the same host."""
    doc: Mapping[str, Any] = load_file(config_path) if config_path else {}
    where = config_path or ""
    checks.known_keys(doc, KEYS, where, "")
    registries: dict[str, Endpoint] = {}
    raw_registries = doc.get("registries") or {}
    for name, entry in checks.mapping(raw_registries, where, "registries").items():
        checks.matching(name, REGISTRY_NAME, "a registry name (lower-case letters, digits, - and _)", where, f"registries.{name}")
        registries[name] = _endpoint(name, entry, where, f"registries.{name}", insecure)

    def field(key: str, flag_value: Any) -> tuple[Any, str, str]:
        """The flag wins over the file; the message then names the flag."""
        if flag_value:
            return flag_value, "", FLAG_FIELDS[key]
        return doc.get(key), where, key

    raw_from, from_where, from_key = field("from", source)
    if source_host is not None:
        named = [e for e in registries.values() if e.host == source_host]
        pushed = named[0] if named else Endpoint(name=source_host, host=source_host, insecure=insecure)
        if raw_from is not None and _resolve(raw_from, registries, from_where, from_key, insecure).host != source_host:
            checks.fail(from_where, from_key, f"is {raw_from!r}, but the push went to {source_host}: replication starts from the registry pushed to")
        raw_from = pushed.name
        registries.setdefault(pushed.name, pushed)
    if raw_from is None:
        raise GenError("is required: the master registry to copy from (--from HOST[:PORT] or from: in replication.yaml)", "--from")
    master = _resolve(raw_from, registries, from_where, from_key, insecure)

    raw_to, to_where, to_key = field("to", list(targets))
    if raw_to is None or raw_to == []:
        raise GenError("is required: at least one replica (--to HOST[:PORT], repeated, or to: in replication.yaml)", "--to")
    if isinstance(raw_to, str):
        raw_to = [raw_to]
    replicas: list[Endpoint] = []
    for index, ref in enumerate(checks.string_list(raw_to, to_where, to_key)):
        key = to_key if to_where == "" else f"{to_key}[{index}]"
        replica = _resolve(ref, registries, to_where, key, insecure)
        if replica.host == master.host:
            checks.fail(to_where, key, f"{replica.label} is the master itself")
        if replica.host in (r.host for r in replicas):
            checks.fail(to_where, key, f"{replica.label} is listed twice")
        replicas.append(replica)

    raw_repos, repos_where, repos_key = field("repos", list(repos))
    globs = []
    for index, text in enumerate(checks.string_list(raw_repos or [], repos_where, repos_key)):
        globs.append(compile_glob(text, repos_where, repos_key if repos_where == "" else f"{repos_key}[{index}]"))

    file_prune = doc.get("prune", False)
    if not isinstance(file_prune, bool):
        checks.fail(where, "prune", f"must be true or false (got {file_prune!r})")
    return Replication(source=master, targets=tuple(replicas), repos=tuple(globs), prune=prune or file_prune)
