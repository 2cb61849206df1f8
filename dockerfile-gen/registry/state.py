"""The record of what replication copied: the state file `replicate --prune` relies on.

For each master and replica, every repo:tag a run found on the replica with the master's digest
(copied, tag moved or already there, and verified), with that digest. --prune deletes only entries
of this record, so only what can be proven the master once had. The record lives with the tool, not
on the replica: a label or annotation would change the manifest and so its digest, and the
replica's own listing cannot tell an image copied from the master from one pushed there by hand.
A machine without the record prunes nothing.

    {"version": 1, "copied": {MASTER: {REPLICA: {REPO: {TAG: {"digest": "sha256:…", "seen": UNIX_TIME,
                                                             "gone_since": UNIX_TIME}}}}}}

MASTER and REPLICA are HOST[:PORT]. `seen` is when a run last found the tag on both; `gone_since`,
when a prune first found it gone from the master (where --min-age counts from). Runs at the same
time do not lose each other's entries: each applies only its own changes to the file as it is then,
under a lock, and replaces the file in one rename.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from dockerfile_gen.errors import GenError

VERSION = 1
MAX_BYTES = 64 << 20  # a few hundred thousand tags; refuse to parse more than that
Key = tuple[str, str, str, str]  # master host, replica host, repo, tag


@dataclass(frozen=True)
class Entry:
    digest: str
    seen: float
    gone_since: float | None = None


class State:
    """The record as read at the start of a run, with this run's changes on top."""

    def __init__(self, path: str | None, entries: dict[Key, Entry]) -> None:
        self.path = path  # None: nothing is read or written, and --prune finds nothing to delete
        self.entries = entries
        self.changes: dict[Key, Entry | None] = {}  # None: forget the entry

    @classmethod
    def load(cls, path: str | None) -> State:
        return cls(path, _read(path) if path else {})

    def copied(self, master: str, replica: str) -> dict[tuple[str, str], Entry]:
        """(repo, tag) -> what was copied from master to replica."""
        return {(k[2], k[3]): e for k, e in self.entries.items() if k[0] == master and k[1] == replica}

    def record(self, key: Key, entry: Entry) -> None:
        self.entries[key] = self.changes[key] = entry

    def forget(self, key: Key) -> None:
        self.entries.pop(key, None)
        self.changes[key] = None

    def save(self) -> None:
        """Applies this run's changes to the file as it is now, under its lock."""
        if not self.path or not self.changes:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            with open(self.path + ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # held for one read and one write: milliseconds
                entries = _read(self.path)
                for key, entry in self.changes.items():
                    if entry is None:
                        entries.pop(key, None)
                    else:
                        entries[key] = entry
                _write(self.path, directory, entries)
        except OSError as exc:
            raise GenError(f"cannot write the replication state: {exc.strerror or exc}", self.path) from None
        self.changes.clear()


def _read(path: str) -> dict[Key, Entry]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GenError(f"cannot read the replication state: {exc.strerror or exc}", path) from None
    if len(raw) > MAX_BYTES:
        raise _corrupt(path, f"larger than {MAX_BYTES >> 20} MiB")
    try:
        data = json.loads(raw)
    except ValueError:
        raise _corrupt(path, "not JSON") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise _corrupt(path, f"no \"version\": {VERSION}")
    entries: dict[Key, Entry] = {}
    for master, replicas in _mapping(data.get("copied", {}), path):
        for replica, repos in _mapping(replicas, path):
            for repo, tags in _mapping(repos, path):
                for tag, entry in _mapping(tags, path):
                    entries[(master, replica, repo, tag)] = _entry(entry, path, f"{master} {replica} {repo}:{tag}")
    return entries


def _mapping(value: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise _corrupt(path, f"a mapping expected, got {type(value).__name__}")
    return list(value.items())


def _entry(value: Any, path: str, what: str) -> Entry:
    def number(field: str) -> bool:
        return isinstance(value.get(field), (int, float)) and not isinstance(value.get(field), bool)

    if not (isinstance(value, dict) and isinstance(value.get("digest"), str) and number("seen")
            and (value.get("gone_since") is None or number("gone_since"))):
        raise _corrupt(path, f"bad entry for {what}")
    return Entry(value["digest"], float(value["seen"]), None if value.get("gone_since") is None else float(value["gone_since"]))


def _corrupt(path: str, why: str) -> GenError:
    return GenError(f"is not a replication state file ({why}): repair or remove it "
                    "(without it, --prune deletes nothing that earlier runs copied)", path)


def _write(path: str, directory: str, entries: dict[Key, Entry]) -> None:
    copied: dict[str, Any] = {}
    for (master, replica, repo, tag), entry in sorted(entries.items()):
        row: dict[str, Any] = {"digest": entry.digest, "seen": round(entry.seen, 3)}
        if entry.gone_since is not None:
            row["gone_since"] = round(entry.gone_since, 3)
        copied.setdefault(master, {}).setdefault(replica, {}).setdefault(repo, {})[tag] = row
    handle = tempfile.NamedTemporaryFile("w", dir=directory, prefix=".replication-", suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump({"version": VERSION, "copied": copied}, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise
