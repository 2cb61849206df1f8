"""The config watcher: a process forked from PID 1 (never PID 1 itself) that watches the config
layers (conf.d/common/, conf.d/<env>/ and the overlay) and every directory under them with the
kernel's directory notification (bootstrap.helpers.dirnotify), and tells PID 1 when their content
has changed, after the debounce, the spread and the check. It is one thread.

What counts as a change is decided by content, never by the kind of event: any event (a write, a
rename of the kubelet's `..data` link, a key added or removed) only marks the layers dirty;
once no event has come for BOOTSTRAP_RELOAD_DEBOUNCE seconds, the names and bytes of the linked
files (links followed, `merged_layers` as config links see them) are hashed, and a hash equal to
the applied one (or to one already turned down) is no change at all. So a `..data` swap to
identical content, a touch, or a chmod never acts; a burst of writes acts once, on its final
content. The directories are walked again before every hash, so a directory added by a change is
watched from then on. A slow re-hash every POLL_INTERVAL catches what no event shows (a link to a
file outside the watched directories).

The channel to PID 1: the watcher writes one JSON line to a pipe PID 1 made for it (`msg_fd`),
then exits with NOTIFY_EXIT. PID 1 reaps its helpers by pid, so that exit can come from this
process alone: no signal an app or a user sends can be taken for it. Messages:
- `{"event": "baseline", "hash", "files"}`: the content found at the first start;
- `{"event": "change", "old", "new", "files", "changed", "check", "changed_at", "decided_at"}`,
  then NOTIFY_EXIT: act (or, with a failed check, record that it was turned down);
- from `post_main`: `{"event": "http", "ok", "detail"}`, then exit 0 (2xx) or 1.
"""
from __future__ import annotations

import json
import os
import time

from bootstrap import log, rundir
from bootstrap.helpers.dirnotify import DirNotify, tree_dirs
from bootstrap.pid1 import configs, users
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from bootstrap.settings.table import Settings

NOTIFY_EXIT = 75  # "a message is waiting": never a crash code (70) nor a signal death
POLL_INTERVAL = 30.0  # a full re-hash even without events
LOOP_WAKE = 0.25  # the main loop's longest sleep: heartbeats, debounce and spread deadlines
CHECK_TIMEOUT = 60.0  # BOOTSTRAP_RELOAD_CHECK is killed after this long (and counts as failed)
MAX_DEPTH = 8  # linked directories inside linked directories
MAX_FILES = 1000  # config files hashed; more are left out, with a warning
MAX_DIRS = 256  # directories watched; changes in others are seen by the POLL_INTERVAL re-hash
MAX_FILE_BYTES = 8 << 20  # bytes hashed per file; the rest of a larger file only by its size
HTTP_TIMEOUT = 10.0  # http:URL: connect and answer, each
READ_CHUNK = 1 << 16


def _sha256() -> Any:
    """The built-in SHA-256 (no OpenSSL: libcrypto would add megabytes to this process)."""
    try:
        from _sha256 import sha256  # Python <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # Python >= 3.12
        except ImportError:
            from hashlib import sha256
    return sha256


SHA256 = _sha256()


class Snapshot:
    """The config as the app would see it: relative path -> SHA-256 of its bytes, and one hash of
    the names and digests together."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        sha = SHA256()
        for rel in sorted(files):
            sha.update(f"{rel}\0{files[rel]}\n".encode("utf-8", "surrogateescape"))
        self.hash = "sha256:" + sha.hexdigest()

    def changed(self, old: dict[str, str]) -> list[str]:
        return sorted(rel for rel in set(old) | set(self.files) if old.get(rel) != self.files.get(rel))


class Hasher:
    """Hashes the merged layers within the bounds, warning once per bound that is hit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.warned: set[str] = set()
        self.merged: dict[str, str] = {}  # the last take's config files: relative path -> path

    def take(self) -> Snapshot:
        merged = self.merged = configs.merged_layers(self.settings)
        if len(merged) > MAX_FILES:
            self._warn("count", f"config reload: {len(merged)} config files, only the first {MAX_FILES} (by name) "
                       "are compared; a change to the others is not seen")
        files = {}
        for rel in sorted(merged)[:MAX_FILES]:
            files[rel] = self.digest(rel, merged[rel])
        return Snapshot(files)

    def digest(self, rel: str, path: str, depth: int = 0) -> str:
        sha = SHA256()
        if os.path.isdir(path):  # a linked directory: its entries' names and bytes
            if depth >= MAX_DEPTH:  # links in links: a loop, or deeper than any config goes
                self._warn(rel, f"config reload: {rel} nests linked directories deeper than {MAX_DEPTH}; not compared")
                return "too deep"
            for inner in sorted(configs.layer_files(path))[:MAX_FILES]:
                part = self.digest(os.path.join(rel, inner), os.path.join(path, inner), depth + 1)
                sha.update(f"{inner}\0{part}\n".encode("utf-8", "surrogateescape"))
            return str(sha.hexdigest())
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                left = MAX_FILE_BYTES
                while left > 0:
                    chunk = fh.read(min(READ_CHUNK, left))
                    if not chunk:
                        break
                    sha.update(chunk)
                    left -= len(chunk)
        except OSError as exc:
            return f"unreadable: {exc.strerror}"  # a dangling link: a change when it resolves again
        if size > MAX_FILE_BYTES:
            self._warn(rel, f"config reload: {rel} is {size} bytes; only its first {MAX_FILE_BYTES} bytes and its "
                       "size are compared")
            sha.update(f"\0size={size}".encode())
        return str(sha.hexdigest())

    def _warn(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning(message)


class Watcher:
    def __init__(self, settings: Settings, applied: dict[str, Any] | None, refused: str | None,
                 msg_fd: int, heartbeat_fd: int) -> None:
        self.settings, self.msg_fd, self.heartbeat_fd = settings, msg_fd, heartbeat_fd
        self.hasher = Hasher(settings)
        self.applied, self.refused = applied, refused
        self.notify = DirNotify()
        self.last_event = 0.0  # monotonic time of the newest event; 0: none pending
        self.first_event_at = 0.0  # wall time of the first event of the pending burst
        self.unwatched: set[str] = set()  # warned about once each

    def mark(self) -> None:
        if not self.last_event:
            self.first_event_at = time.time()
        self.last_event = time.monotonic()

    def wait(self, timeout: float) -> None:
        """Sleeps until a change or the timeout; a change marks the layers dirty."""
        if self.notify.wait(timeout):
            self.mark()

    def start(self) -> None:
        now = self.take()
        if self.applied is None:  # the first start: said once, here rather than in PID 1
            warn_mounted_files(self.hasher.merged)
            self.applied = {"hash": now.hash, "files": now.files}
            self.send({"event": "baseline", "hash": now.hash, "files": now.files})
        elif not self.known(now.hash):
            self.mark()  # changed while PID 1 acted on the last change: debounce it like any other

    def known(self, digest: str) -> bool:
        """The content the app was last given, or one whose check already failed: nothing to do."""
        assert self.applied is not None
        return digest in (self.applied["hash"], self.refused)

    def take(self) -> Snapshot:
        """Watches the layers' directories as they are now, then hashes: a change made while the
        hash is taken is an event, never lost."""
        dirs, cut = tree_dirs(configs.layer_dirs(self.settings), MAX_DIRS)
        failed = set(self.notify.watch(dirs))
        if cut:
            failed.add(f"directories past the first {MAX_DIRS}")
        for what in sorted(failed - self.unwatched):
            log.warning(f"config reload: cannot watch {what} for changes; re-reading the config every "
                        f"{POLL_INTERVAL:g}s catches them")
        self.unwatched |= failed
        return self.hasher.take()

    def run(self) -> NoReturn:
        self.start()
        poll_at = time.monotonic() + POLL_INTERVAL
        while True:
            self.beat()
            now = time.monotonic()
            if now >= poll_at:
                poll_at = now + POLL_INTERVAL
                if not self.known(self.take().hash):
                    self.mark()
            pending = self.last_event
            wait = LOOP_WAKE
            if pending:
                quiet_for = now - pending
                if quiet_for >= self.settings.reload_debounce:
                    self.settled(pending)
                else:  # wake when the debounce ends, not up to a loop period later
                    wait = min(wait, self.settings.reload_debounce - quiet_for)
            self.wait(wait)

    def settled(self, pending: float) -> None:
        """No event for the debounce: compare, wait out the spread, check, tell PID 1."""
        snap = self.take()
        assert self.applied is not None
        if self.known(snap.hash):
            if self.last_event == pending:
                self.last_event = 0.0
            log.debug("config reload: events, but the same names and bytes: nothing to do")
            return
        if not self.spread_out(pending):
            return  # a newer change came during the spread: start again from the debounce
        check = self.check()
        self.send({"event": "change", "old": self.applied["hash"], "new": snap.hash, "files": snap.files,
                   "changed": snap.changed(self.applied["files"]), "check": check,
                   "changed_at": self.first_event_at, "decided_at": time.time()})
        os._exit(NOTIFY_EXIT)

    def spread_out(self, pending: float) -> bool:
        """Waits this pod's share of BOOTSTRAP_RELOAD_SPREAD; False when an event came meanwhile."""
        delay = spread_delay(self.settings.reload_spread, self.settings.pod or os.uname().nodename)
        if delay > 0:
            log.info(f"config reload: the config changed; acting in {delay:.1f}s (this pod's share of the "
                     f"{self.settings.reload_spread:g}s spread)")
        until = time.monotonic() + delay
        while time.monotonic() < until:
            self.beat()
            self.wait(min(LOOP_WAKE, max(0.0, until - time.monotonic())))
            if self.last_event != pending:
                return False
        return True

    def check(self) -> dict[str, Any] | None:
        argv = self.settings.reload_check
        if not argv:
            return None
        from bootstrap.helpers.checks import check_cmd

        began = time.monotonic()
        result = check_cmd(argv, CHECK_TIMEOUT, users.switch(self.settings.user))
        return {"ok": result.ok, "detail": result.detail, "seconds": round(time.monotonic() - began, 3)}

    def beat(self) -> None:
        try:
            os.write(self.heartbeat_fd, b".")
        except OSError:
            pass  # pipe full (PID 1 reads later) or closed (it is about to kill us)

    def send(self, message: dict[str, Any]) -> None:
        send(self.msg_fd, message)


def warn_mounted_files(merged: dict[str, str]) -> None:
    """A config file that is a mount point of its own (a `subPath` mount) never sees a change of
    its ConfigMap: the kubelet updates only directory mounts."""
    for rel, path in sorted(merged.items()):
        if not os.path.islink(path) and os.path.ismount(path):
            log.warning(f"config reload: {path} is a mount point of its own (a subPath mount?): the kubelet "
                        f"never updates it, so a change of {rel} is never seen; mount the ConfigMap as a directory")


def send(fd: int, message: dict[str, Any]) -> None:
    """One JSON line to PID 1, whole: the write end is made blocking here, so a long line waits for
    PID 1 to read rather than being cut."""
    os.set_blocking(fd, True)
    rundir.write_all(fd, (json.dumps(message, sort_keys=True) + "\n").encode())


def spread_delay(spread: float, pod: str) -> float:
    """A delay in [0, spread), the same every time for one pod name and spread evenly over names."""
    if spread <= 0:
        return 0.0
    digest = SHA256(pod.encode("utf-8", "surrogateescape")).digest()
    return spread * int.from_bytes(digest[:4], "big") / 2.0 ** 32


def watch_main(settings: Settings, applied: dict[str, Any] | None, refused: str | None, msg_fd: int,
               heartbeat_fd: int) -> NoReturn:
    """Runs in a process forked from PID 1 (every catchable signal blocked, inherited; PID 1 ends
    it with SIGKILL). `applied`: the content the app was last given ({hash, files}), None at the
    first start; `refused`: a hash whose check failed. Never returns."""
    try:
        os.chdir(settings.app_home)  # the check runs in APP_HOME
    except OSError:
        pass
    try:
        Watcher(settings, applied, refused, msg_fd, heartbeat_fd).run()
    except Exception as exc:  # PID 1 restarts us; say why we went
        log.error(f"config watcher crashed: {exc!r}")
    finally:
        os._exit(70)


def post_main(url: str, msg_fd: int, heartbeat_fd: int) -> NoReturn:
    """http:URL: one POST with an empty body; exit 0 on a 2xx answer, 1 otherwise."""
    import urllib.error
    import urllib.request

    ok, detail = False, ""
    try:
        request = urllib.request.Request(url, data=b"", method="POST", headers={"User-Agent": "bootstrap-reload"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the app's own endpoint: no proxy
        with opener.open(request, timeout=HTTP_TIMEOUT) as response:
            ok, detail = 200 <= response.status < 300, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        detail = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        detail = f"no answer: {getattr(exc, 'reason', exc)}"
    try:
        send(msg_fd, {"event": "http", "ok": ok, "detail": detail[:200]})
    finally:
        os._exit(0 if ok else 1)
