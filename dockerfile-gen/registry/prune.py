"""`replicate --prune`: delete on a replica only what replication copied there from the master and
the master no longer has. The rules (docs/registry.md, "Pruning"):

  * Only entries of the record (dockerfile_gen.registry.state) are ever deleted: repo:tags a run
    found on the replica with the master's digest. A repository or tag that only the replica has was
    never recorded, so it is never deleted.
  * The master's listing must prove the entry gone. An empty catalog refuses the whole prune; so does
    a recorded repository that the catalog leaves out while its tag list still answers with tags
    (the catalog is cut short) or cannot be read. A master that does not answer stops the run before.
  * The replica's tag must still give the recorded digest; one that changed since is left alone.
  * With a minimum age, an entry goes only once the first prune that found it gone is that long ago.
  * A manifest a kept tag resolves to, or that a kept index names (at any depth), is never deleted:
    the registry API deletes manifests, not tags, so such a stale tag stays and a warning says why.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace

from dockerfile_gen.errors import EXIT_UNAVAILABLE, GenError
from dockerfile_gen.registry.client import INDEX_TYPES, Client
from dockerfile_gen.registry.config import Replication
from dockerfile_gen.registry.endpoint import Endpoint
from dockerfile_gen.registry.session import RegistryError, Unreachable
from dockerfile_gen.registry.state import Entry, State

log = logging.getLogger("dockerfile_gen")


def master_listing(master: Client, config: Replication, catalog: list[str], listed: dict[str, set[str]],
                   record: State) -> dict[str, set[str]]:
    """repo -> the tags the master lists, for each selected repository it lists or the record names.

    Raises GenError (exit 69, one line) when the listing cannot prove what is gone."""
    if not catalog:
        raise _refused(f"the master {config.source.label}'s catalog lists no repository (an account without "
                       "catalog rights?)")
    listing = dict(listed)
    recorded = {repo for target in config.targets for repo, _ in record.copied(config.source.host, target.host)}
    for repo in sorted(r for r in recorded - set(catalog) if config.wants(r)):
        try:
            tags = master.tags(repo)  # 404: the repository is gone
        except (RegistryError, Unreachable) as exc:
            raise _refused(f"cannot tell whether {repo} is gone from the master: {exc}") from None
        if tags:
            raise _refused(f"the catalog does not list {repo}, which still has tags: the catalog is incomplete "
                           "(an account without catalog rights?)")
        listing[repo] = set()
    return listing


def _refused(why: str) -> GenError:
    return GenError(f"refused: {why}; nothing was copied or deleted", "--prune").with_exit_code(EXIT_UNAVAILABLE)


def prune_replica(client: Client, endpoint: Endpoint, config: Replication, record: State,
                  listing: dict[str, set[str]], planned: list[str], now: float | None = None) -> Iterator[str]:
    """Deletes (or, in a dry run, adds to planned) what the rules allow on one replica; yields each
    manifest deleted. Registry errors propagate: the caller marks the replica."""
    now = time.time() if now is None else now
    gone: dict[str, list[tuple[str, Entry]]] = {}
    for (repo, tag), entry in sorted(record.copied(config.source.host, endpoint.host).items()):
        if not config.wants(repo):
            continue
        if tag in listing[repo]:
            if entry.gone_since is not None:  # back on the master
                record.record((config.source.host, endpoint.host, repo, tag), replace(entry, gone_since=None))
            continue
        gone.setdefault(repo, []).append((tag, entry))
    for repo, entries in gone.items():
        yield from _prune_repo(client, endpoint, config, record, repo, entries, planned, now)


def _prune_repo(client: Client, endpoint: Endpoint, config: Replication, record: State, repo: str,
                entries: list[tuple[str, Entry]], planned: list[str], now: float) -> Iterator[str]:
    name = endpoint.name
    doomed: dict[str, list[str]] = {}  # digest -> the stale tags on it
    for tag, entry in entries:
        key = (config.source.host, endpoint.host, repo, tag)
        head = client.head_manifest(repo, tag)
        if head is None or head.digest != entry.digest:
            if head is not None:
                log.warning("prune %s: %s:%s left alone: it is %s, not what was copied from the master (%s)",
                            name, repo, tag, head.digest[:19], entry.digest[:19])
            record.forget(key)
            continue
        if entry.gone_since is None:
            record.record(key, replace(entry, gone_since=now))
        since = now if entry.gone_since is None else entry.gone_since
        if now - since < config.min_age:
            log.info("prune %s: %s:%s gone from the master since %s; deleted once it is gone %s", name, repo, tag,
                     time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)), age_text(config.min_age))
            continue
        doomed.setdefault(entry.digest, []).append(tag)
    if not doomed:
        return
    users = _kept(client, repo, {tag for tags in doomed.values() for tag in tags})
    for digest, tags in sorted(doomed.items()):
        refs = ", ".join(f"{repo}:{tag}" for tag in tags)
        if digest in users:
            log.warning("prune %s: %s kept: its manifest is used by %s, and the registry API deletes manifests, not tags",
                        name, refs, users[digest])
        elif config.dry_run:
            planned.append(f"would delete on {endpoint.label}: {refs} ({digest})")
        else:
            client.delete_manifest(repo, digest)
            for tag in tags:
                record.forget((config.source.host, endpoint.host, repo, tag))
            log.info("prune %s: deleted %s (%s), gone from the master", name, refs, digest[:19])
            yield digest


def _kept(client: Client, repo: str, doomed: set[str]) -> dict[str, str]:
    """digest -> the kept tag that needs it: every kept tag's manifest and, through indexes, every
    manifest those name. Kept tags are all of the replica's tags in repo but the doomed ones."""
    users: dict[str, str] = {}
    for tag in sorted(set(client.tags(repo)) - doomed):
        head = client.head_manifest(repo, tag)
        if head is None:
            continue
        user = f"{repo}:{tag}"
        pending = [(head.digest, head.media_type, user)]
        while pending:
            digest, media_type, by = pending.pop()
            if digest in users:
                continue
            users[digest] = by
            if media_type and media_type not in INDEX_TYPES:
                continue  # an image manifest names no other manifest
            pending += [(child, child_type, f"{user} (an index that names it)") for child, child_type in client.children(repo, digest)]
    return users


def age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
