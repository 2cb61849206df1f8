"""`replicate`: make every replica hold what the master holds, tag for tag, digest for digest.

For each tag on the master (the repositories the globs select) and each replica:
  * the replica's tag already resolves to the master's digest   -> "already there", nothing sent;
  * the replica holds that manifest under another tag or none    -> the tag is pointed at it with one
    manifest PUT ("moved"): a tag moved on the master moves on the replica without blob traffic;
  * otherwise skopeo copies the image by digest (`--all --preserve-digests`), and sends only the
    blobs the replica lacks;
then the replica's tag is read back and must give the master's digest ("verified").

A replica that stops answering is marked down for the rest of the run; the other replicas finish,
and the report names the images it misses. Each image a replica is verified to hold goes into the
record of what was copied (dockerfile_gen.registry.state). Nothing is deleted unless prune is on,
and then only what that record and the master's listing prove (dockerfile_gen.registry.prune).
Replicas are served in parallel (one thread each), images in order, one progress line per image.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from dockerfile_gen.errors import EXIT_UNAVAILABLE, GenError
from dockerfile_gen.registry import prune
from dockerfile_gen.registry.client import Blob, Client
from dockerfile_gen.registry.config import Replication
from dockerfile_gen.registry.endpoint import Endpoint
from dockerfile_gen.registry.session import RegistryError, Unreachable
from dockerfile_gen.registry.state import Entry, State

log = logging.getLogger("dockerfile_gen")

SKOPEO_TIMEOUT = 3600.0  # one image; a dead replica makes skopeo fail long before this

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_skopeo(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=SKOPEO_TIMEOUT)


@dataclass(frozen=True)
class Image:
    repo: str
    tag: str
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"


@dataclass(frozen=True)
class CopyResult:
    """What bringing one image to one replica did."""

    status: str  # copied | moved | present | failed
    sent: int = 0  # bytes: the blobs (and manifest) the replica lacked
    seconds: float = 0.0
    error: str = ""

    def describe(self) -> str:
        if self.status == "present":
            return "already there"
        if self.status == "moved":
            return "tag moved to it (no blobs sent), verified"
        if self.status == "copied":
            return f"copied {human(self.sent)} in {self.seconds:.1f}s, verified"
        return f"FAILED: {self.error}"


@dataclass
class ReplicaState:
    endpoint: Endpoint
    client: Client
    down: str = ""  # why it is out of this run, e.g. "unreachable (connection refused)"; "" while it answers
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Blobs this run put on the replica: skopeo mounts them into the next repository instead of sending them again.
    blobs_sent: set[str] = field(default_factory=set)


@dataclass
class Report:
    images: int = 0
    replicas: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"copied": 0, "moved": 0, "present": 0, "failed": 0, "pruned": 0})
    sent: int = 0
    seconds: float = 0.0
    states: list[ReplicaState] = field(default_factory=list)
    dry_run: bool = False
    planned: list[str] = field(default_factory=list)  # dry run: "would delete on REPLICA: repo:tag (digest)"

    @property
    def complete(self) -> bool:
        return self.counts["failed"] == 0 and not any(s.down or s.errors for s in self.states)

    def summary(self) -> str:
        if self.dry_run:
            return "".join(f"{line}\n" for line in self.planned) + (
                f"replicate --dry-run: {self.images} images x {self.replicas} replicas: {len(self.planned)} manifest(s) "
                "would be pruned; nothing was copied or deleted\n")
        c = self.counts
        pruned = f", {c['pruned']} pruned" if c["pruned"] else ""
        return (f"replicate: {self.images} images x {self.replicas} replicas: {c['copied']} copied, "
                f"{c['moved']} tags moved, {c['present']} already there, {c['failed']} failed{pruned}; "
                f"{human(self.sent)} sent ({self.sent} bytes) in {self.seconds:.2f}s\n")

    def failures(self) -> list[str]:
        """One line per incomplete replica: what is wrong and which images it lacks."""
        lines = []
        for state in self.states:
            if not (state.down or state.missing or state.errors):
                continue
            why = state.down or "; ".join(dict.fromkeys(state.errors)) or "incomplete"
            why = why.removeprefix(f"{state.endpoint.label} ").removeprefix(f"{state.endpoint.label}: ")
            shown = ", ".join(state.missing[:20]) + (f", … ({len(state.missing)} in all)" if len(state.missing) > 20 else "")
            then = "run replicate again when it is back" if why.startswith("unreachable") else "fix that and run replicate again"
            lines.append(f"replica {state.endpoint.label}: {why}; missing {len(state.missing)} image(s): {shown or 'none'}; {then}")
        return lines


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def replicate(config: Replication, runner: Runner = run_skopeo, clock: Callable[[], float] = time.monotonic) -> Report:
    if shutil.which("skopeo") is None and runner is run_skopeo and not config.dry_run:
        raise GenError("skopeo is not installed (Debian: apt-get install skopeo)", "replicate")
    started = clock()
    record = State.load(config.state_path)  # a bad state file stops the run before it does anything
    pruning = config.prune or config.dry_run
    master = Client(config.source)
    with ExitStack() as stack:
        stack.callback(master.close)
        images, listed, catalog = _master_images(master, config)
        # Proven before any copy: a prune the master's listing cannot support stops the whole run.
        listing = prune.master_listing(master, config, catalog, listed, record) if pruning else listed
        states = []
        for endpoint in config.targets:
            state = ReplicaState(endpoint, Client(endpoint))
            stack.callback(state.client.close)
            states.append(state)
        report = Report(images=len(images), replicas=len(states), states=states, dry_run=config.dry_run)
        with ThreadPoolExecutor(max_workers=len(states), thread_name_prefix="replica") as pool:
            list(pool.map(_ping, states))
            if not config.dry_run:
                _copy_images(_Copier(master, config, runner, stack), pool, images, report, record)
            if pruning:
                for state in states:
                    report.counts["pruned"] += _prune(state, config, record, listing, report.planned)
        if not config.dry_run:
            record.save()
        report.seconds = clock() - started
        return report


def _copy_images(copier: _Copier, pool: ThreadPoolExecutor, images: list[Image], report: Report, record: State) -> None:
    """Each image to every replica at once; what each replica verifiably holds goes into the record."""
    master = copier.config.source.host
    for index, image in enumerate(images, 1):
        results = list(pool.map(lambda s: copier.sync(s, image), report.states))
        parts = []
        for state, result in zip(report.states, results):
            report.counts[result.status] += 1
            report.sent += result.sent
            if result.status == "failed":
                state.missing.append(image.ref)
            else:
                record.record((master, state.endpoint.host, image.repo, image.tag), Entry(image.digest, time.time()))
            parts.append(f"{state.endpoint.name}: {result.describe()}")
        log.info("[%d/%d] %s %s  %s", index, len(images), image.ref, image.digest[:19], "; ".join(parts))


def _ping(state: ReplicaState) -> None:
    try:
        state.client.ping()
    except Unreachable as exc:
        state.down = f"unreachable ({exc})"
    except RegistryError as exc:
        state.down = str(exc)


def _master_images(master: Client, config: Replication) -> tuple[list[Image], dict[str, set[str]], list[str]]:
    """Every selected tag on the master with its digest; also repo -> the tags it lists, and its
    whole catalog, for pruning."""
    where = config.source.label
    try:
        master.ping()
        catalog = list(master.repositories())
        repos = sorted(r for r in catalog if config.wants(r))
        images: list[Image] = []
        listed: dict[str, set[str]] = {}
        for repo in repos:
            listed[repo] = set(master.tags(repo))
            for tag in sorted(listed[repo]):
                head = master.head_manifest(repo, tag)
                if head is not None:  # deleted between the listing and now
                    images.append(Image(repo, tag, head.digest))
    except Unreachable as exc:
        raise GenError(f"master {where} is unreachable: {exc}", "--from").with_exit_code(EXIT_UNAVAILABLE) from None
    except RegistryError as exc:
        raise GenError(f"master: {exc}", "--from").with_exit_code(EXIT_UNAVAILABLE) from None
    for glob in config.repos:
        if not any(glob.matches(r) for r in repos):
            log.warning("replicate: --repo %s matches no repository on the master %s", glob.text, where)
    return images, listed, catalog


class _Copier:
    """Brings one image to one replica. Called from one thread per replica."""

    def __init__(self, master: Client, config: Replication, runner: Runner, stack: ExitStack) -> None:
        self.master = master
        self.config = config
        self.runner = runner
        self.stack = stack
        self.lock = threading.Lock()  # the master's connections are shared by the replica threads
        self.blob_cache: dict[str, list[Blob]] = {}
        self.manifest_cache: dict[str, tuple[bytes, str]] = {}
        self.cert_dirs: dict[str, str | None] = {}

    def sync(self, state: ReplicaState, image: Image) -> CopyResult:
        if state.down:
            return CopyResult("failed", error=state.down)
        started = time.monotonic()
        replica = state.client
        try:
            head = replica.head_manifest(image.repo, image.tag)
            if head is not None and head.digest == image.digest:
                return CopyResult("present")
            if replica.head_manifest(image.repo, image.digest) is not None:
                body, media_type = self._manifest(image)
                replica.put_manifest(image.repo, image.tag, body, media_type)
                return self._verified(state, image, CopyResult("moved", len(body), time.monotonic() - started))
            blobs = self._blobs(image)
            lacking = [b for b in blobs if b.digest not in state.blobs_sent and not replica.has_blob(image.repo, b.digest)]
            result = self.runner(self._skopeo_argv(state.endpoint, image))
            if result.returncode != 0:
                _ping(state)  # a copy that failed because the replica went away marks it down
                reason = state.down or _last_line(result.stderr) or f"skopeo exited {result.returncode}"
                if not state.down:
                    state.errors.append(f"skopeo copy: {reason}")
                return CopyResult("failed", error=f"skopeo copy: {reason}")
            sent = sum(b.size for b in lacking) + len(self._manifest(image)[0])
            state.blobs_sent.update(b.digest for b in blobs)
            return self._verified(state, image, CopyResult("copied", sent, time.monotonic() - started))
        except Unreachable as exc:
            state.down = f"unreachable ({exc})"
            return CopyResult("failed", error=state.down)
        except (RegistryError, GenError) as exc:
            state.errors.append(str(exc))
            return CopyResult("failed", error=str(exc))

    def _verified(self, state: ReplicaState, image: Image, result: CopyResult) -> CopyResult:
        head = state.client.head_manifest(image.repo, image.tag)
        if head is None or head.digest != image.digest:
            got = head.digest if head else "nothing"
            error = f"verification failed: the replica's {image.ref} is {got}, the master's {image.digest}"
            state.errors.append(error)
            return CopyResult("failed", result.sent, result.seconds, error)
        return result

    def _manifest(self, image: Image) -> tuple[bytes, str]:
        with self.lock:
            if image.digest not in self.manifest_cache:
                found = self.master.get_manifest(image.repo, image.digest)
                if found is None:
                    raise RegistryError(f"the master no longer has {image.repo}@{image.digest}")
                self.manifest_cache[image.digest] = found
            return self.manifest_cache[image.digest]

    def _blobs(self, image: Image) -> list[Blob]:
        with self.lock:
            if image.digest not in self.blob_cache:
                self.blob_cache[image.digest] = self.master.blobs(image.repo, image.digest)
            return self.blob_cache[image.digest]

    def _skopeo_argv(self, replica: Endpoint, image: Image) -> list[str]:
        master = self.config.source
        argv = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet"]
        argv += self._endpoint_flags("src", master) + self._endpoint_flags("dest", replica)
        return argv + [f"docker://{master.host}/{image.repo}@{image.digest}", f"docker://{replica.host}/{image.ref}"]

    def _endpoint_flags(self, side: str, endpoint: Endpoint) -> list[str]:
        flags = [f"--{side}-tls-verify={'false' if endpoint.insecure else 'true'}"]
        cert_dir = self._cert_dir(endpoint)
        if cert_dir:
            flags.append(f"--{side}-cert-dir={cert_dir}")
        if endpoint.authfile:
            flags.append(f"--{side}-authfile={endpoint.authfile}")
        return flags

    def _cert_dir(self, endpoint: Endpoint) -> str | None:
        """skopeo reads TLS files from a directory (*.crt CAs, *.cert + *.key client pair); link ours into one."""
        with self.lock:
            if endpoint.host not in self.cert_dirs:
                self.cert_dirs[endpoint.host] = self._make_cert_dir(endpoint)
            return self.cert_dirs[endpoint.host]

    def _make_cert_dir(self, endpoint: Endpoint) -> str | None:
        links = {"ca.crt": endpoint.ca_file, "client.cert": endpoint.client_cert, "client.key": endpoint.client_key}
        if not any(links.values()):
            return None
        directory = self.stack.enter_context(_temp_dir())
        for name, source in links.items():
            if source:
                os.symlink(os.path.abspath(source), os.path.join(directory, name))
        return directory


@contextmanager
def _temp_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="replicate-certs-") as directory:
        yield directory


def _prune(state: ReplicaState, config: Replication, record: State, listing: dict[str, set[str]], planned: list[str]) -> int:
    """Prunes one replica (dockerfile_gen.registry.prune); its failure marks the replica, as a copy's does."""
    if state.down:
        return 0
    pruned = 0
    try:
        for _ in prune.prune_replica(state.client, state.endpoint, config, record, listing, planned):
            pruned += 1
    except Unreachable as exc:
        state.down = f"unreachable ({exc})"
    except RegistryError as exc:
        state.errors.append(f"prune: {exc}")
    return pruned


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
