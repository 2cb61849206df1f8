"""Config reload in PID 1 (BOOTSTRAP_RELOAD): acts on what the config watcher reports.

The watcher (bootstrap.helpers.reload_watch, a forked helper: watchdog is never loaded here) does
the watching, the debounce, the spread and the check. It tells PID 1 by exiting with NOTIFY_EXIT
after writing one JSON line to a pipe PID 1 made for it. PID 1 reaps its helpers by pid, so only
that process can send this: a signal meant for the app (a `kill -HUP 1` included) is forwarded as
always and never starts a reload. PID 1 then acts, writes one journal record, updates status.json
and supervisor.json, and starts the watcher again with the content now applied.

The actions:
- signal:NAME: the config links are brought up to date (new keys linked, removed keys unlinked),
  then the signal goes to the app's process group;
- http:URL: the links likewise, then a forked helper POSTs to the URL (2xx is success);
- restart: the app is restarted in the pod (bootstrap.pid1.restart);
- exit: the container stops as on SIGTERM, the reload named in the exit record and the
  termination message, and the kubelet starts it again with the new config.
A failed check takes no action: the app keeps running, the record says why.
PID 1 loads this module only when BOOTSTRAP_RELOAD is set: its import cost is not in the default's.
"""
from __future__ import annotations

import json
import os
import signal
import time

from bootstrap import log, rundir
from bootstrap.errors import BootstrapError
from bootstrap.pid1 import actions, configs, logdirs
from bootstrap.pid1.actions import Planner
from bootstrap.pid1.forked import ForkedHelper
from bootstrap.pid1.sidewrite import SideWrite
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from bootstrap.pid1.restart import InPodRestart
    from bootstrap.pid1.supervisor import Supervisor
    from bootstrap.settings.table import Settings

WATCHER = "bootstrap.helpers.reload_watch:watch_main"
POSTER = "bootstrap.helpers.reload_watch:post_main"
NOTIFY_EXIT = 75  # reload_watch.NOTIFY_EXIT (PID 1 never imports the helpers)
WATCHER_HEARTBEAT = 90.0  # longer than the check may take (reload_watch.CHECK_TIMEOUT)
MAX_MESSAGES = 4 << 20  # bytes of unread watcher output kept; a longer line is dropped


class MessageHelper(ForkedHelper):
    """A helper whose exit with one of `codes` is a message for PID 1, not a death: it is handed
    to `on_exit` and the helper stays down until it is started again."""

    def __init__(self, name: str, entry: str, args: tuple[object, ...], heartbeat_timeout: float | None,
                 codes: frozenset[int], on_exit: Callable[[int], None]) -> None:
        super().__init__(name, entry, args, heartbeat_timeout)
        self.codes, self.on_exit = codes, on_exit

    def died(self, code: int) -> None:
        if code not in self.codes or not self.enabled:
            super().died(code)
            return
        self._gone()
        self.enabled = False
        self.on_exit(code)

    def start(self) -> None:
        if self.enabled:  # the supervisor starts every helper at first; one on demand waits for resume
            super().start()

    def resume(self, args: tuple[object, ...]) -> None:
        self.args, self.enabled = args, True
        self.start()


class WatcherHelper(MessageHelper):
    """The config watcher: PID 1's loop watches it on every turn, and through it the reloader."""

    reloader: Reloader

    def watch(self) -> None:
        super().watch()
        self.reloader.turn()

    def next_deadline(self) -> float | None:
        return min([d for d in (super().next_deadline(), *self.reloader.deadlines()) if d is not None], default=None)


def action_of(value: str) -> tuple[str, str]:
    """BOOTSTRAP_RELOAD as (kind, argument): ("signal", "SIGHUP"), ("http", URL), ("restart", "")."""
    kind, _, arg = value.partition(":")
    return kind, arg


def relink(settings: Settings) -> str:
    """Config links as the new content needs them: a new key linked, a removed one unlinked,
    nothing else touched (the same plan as at start). Returns a problem, or ""."""
    try:
        planner = Planner()
        configs.plan(settings, planner)
        actions.apply(planner.actions)
    except (BootstrapError, OSError) as exc:
        log.error(f"config reload: cannot update the config links: {exc}")
        return f"config links: {exc}"
    for action in planner.actions:
        log.debug(f"config reload: {action.describe()}")
    return ""


class Reloader:
    def __init__(self, sup: Supervisor, spawn: Callable[[], int]) -> None:
        self.sup, self.settings, self.spawn = sup, sup.settings, spawn
        self.kind, self.arg = action_of(self.settings.reload)
        self.msg_r, self.msg_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.buffer = b""
        self.messages: list[dict[str, Any]] = []
        self.applied: dict[str, Any] | None = None  # {hash, files}: what the app was last given
        self.refused: str | None = None  # a hash whose check failed: not acted on again
        self.current: dict[str, Any] | None = None  # the change being acted on
        self.began = 0.0
        self.restart: InPodRestart | None = None
        self.over = False  # the container is stopping: no more reloads
        self.config: dict[str, Any] = {"hash": None, "applied_at": None, "last_reload": None}
        self.config_dirty = False
        self.status = SideWrite(f"the config section of {self.settings.run_dir}/{rundir.STATUS_FILE}")
        self.exit_note: dict[str, object] = {}  # exit-record fields when a reload stops the container
        self.watcher = WatcherHelper("config watcher", WATCHER, self.watch_args(), WATCHER_HEARTBEAT,
                                     frozenset({NOTIFY_EXIT}), self.watcher_said)
        self.watcher.reloader = self
        self.poster = MessageHelper("reload request", POSTER, (self.arg, self.msg_w), None,
                                    frozenset({0, 1}), self.poster_said)
        self.poster.enabled = False  # started per request

    def watch_args(self) -> tuple[object, ...]:
        return (self.settings, self.applied, self.refused, self.msg_w)

    def helpers(self) -> list[ForkedHelper]:
        return [self.watcher, self.poster]

    def deadlines(self) -> list[float]:
        return self.restart.deadlines() if self.restart is not None else []

    # --- messages --------------------------------------------------------------------------

    def read_messages(self) -> None:
        while True:
            try:
                chunk = os.read(self.msg_r, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
            if len(self.buffer) > MAX_MESSAGES:
                log.warning("config reload: a watcher message is too long; dropped")
                self.buffer = b""
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("event") == "baseline":
                self.applied = {"hash": message.get("hash"), "files": message.get("files") or {}}
                self.set_config(hash=self.applied["hash"])
            elif isinstance(message, dict):
                self.messages.append(message)

    def take(self, event: str) -> dict[str, Any] | None:
        found = [m for m in self.messages if m.get("event") == event]
        self.messages = [m for m in self.messages if m.get("event") != event]
        return found[-1] if found else None

    def turn(self) -> None:
        """On every loop turn: messages, a pending status write, and a restart in progress."""
        self.read_messages()
        self.publish_config()
        if self.restart is not None:
            self.restart.turn()

    # --- acting ----------------------------------------------------------------------------

    def watcher_said(self, _code: int) -> None:
        self.read_messages()
        change = self.take("change")
        if change is None or self.over:
            self.resume()
            return
        self.current, self.began = change, time.monotonic()
        check = change.get("check")
        changed = change.get("changed") or []
        if isinstance(check, dict) and not check.get("ok"):
            log.warning(f"config reload: the check failed ({check.get('detail')}); the app keeps its config, "
                        f"changed files not applied: {', '.join(changed) or '(none)'}")
            self.refused = change.get("new")
            self.done("check-failed", str(check.get("detail") or ""))
            return
        log.info(f"config reload: {len(changed)} file(s) changed ({', '.join(changed[:5])}"
                 f"{', …' if len(changed) > 5 else ''}); {self.settings.reload}")
        if self.kind == "restart":
            from bootstrap.pid1.restart import InPodRestart  # only when a restart happens

            self.restart = InPodRestart(self.sup, self.spawn, self.relink, self.done, self.config)
            self.restart.begin()
        elif self.kind == "exit":
            self.exit_note = {"reload": self.summary("exit", "ok")}
            self.over = True  # no watcher after this: the container stops
            self.done("ok", "the container stops so that it starts again with the new config")
            self.sup.start_stop(f"config reload: {len(changed)} file(s) changed (BOOTSTRAP_RELOAD=exit)")
        else:
            problem = self.relink()
            if self.kind == "signal":
                self.sup.to_group(int(signal.Signals[self.arg]))
                self.done("ok" if not problem else "failed", problem or f"{self.arg} sent to the app's process group")
            else:
                self.poster.resume((self.arg, self.msg_w))

    def poster_said(self, code: int) -> None:
        self.read_messages()
        answer = self.take("http") or {}
        self.done("ok" if code == 0 else "failed", str(answer.get("detail") or f"exit {code}"))

    def relink(self) -> str:
        return relink(self.settings)

    def summary(self, action: str, result: str) -> dict[str, Any]:
        change = self.current or {}
        return {"action": action, "result": result, "changed": change.get("changed") or [],
                "old_hash": change.get("old"), "new_hash": change.get("new")}

    def done(self, result: str, detail: str) -> None:
        """One reload is over: record it, count it, publish it, and watch for the next."""
        change, self.restart = self.current or {}, None
        seconds = round(time.monotonic() - self.began, 3)
        record = {**self.summary(self.kind, result), "check": change.get("check"), "detail": detail,
                  "seconds": seconds}
        if change.get("changed_at"):
            record["changed_at"] = rundir.iso_time(float(change["changed_at"]))
        self.sup.journal.add(logdirs.record_line(self.settings, self.sup.plan.ip, "reload", self.sup.app, **record))
        applied = result == "ok"
        if applied:
            self.applied = {"hash": change.get("new"), "files": change.get("files") or {}}
            self.refused = None
        now = time.time()
        last = {**record, "time": rundir.iso_time(now)}
        if applied:
            self.set_config(hash=change.get("new"), applied_at=rundir.iso_time(now), last_reload=last)
        else:
            self.set_config(last_reload=last)
        self.sup.counters.reloaded(self.kind, result, now if applied else None)
        (log.info if applied else log.warning)(f"config reload: {result} ({detail}) in {seconds:g}s")
        self.current = None
        if not applied and result != "check-failed":
            self.refused = change.get("new")  # not retried until the config changes again
        self.resume()

    def resume(self) -> None:
        if not self.over:
            self.watcher.resume(self.watch_args())

    def set_config(self, **fields: Any) -> None:
        self.config.update(fields)
        self.config_dirty = True
        self.publish_config()

    def publish_config(self) -> None:
        """status.json's `config`, written now or on a later loop turn (full disk, busy lock)."""
        if self.config_dirty:
            self.status.attempt(self._write_config)

    def _write_config(self) -> None:
        try:
            rundir.update(self.settings.run_dir, config=dict(self.config))
        except BlockingIOError:
            return  # the checker is writing status.json this instant: the next loop turn
        self.config_dirty = False

    # --- the container's end -----------------------------------------------------------------

    def stop_requested(self) -> None:
        """SIGTERM (or another stop): no more reloads; a restart in progress is over."""
        if self.over:
            return
        self.over = True
        if self.restart is not None:
            self.restart.interrupted()
        self.watcher.stop()
        self.poster.stop()

    def restarting(self) -> bool:
        """An in-pod restart is stopping the old app (a SIGTERM now is the container's stop)."""
        return self.restart is not None and self.restart.phase == "stopping"

    def exit_text(self) -> str:
        return "; stopped to apply a config change (BOOTSTRAP_RELOAD=exit)" if self.exit_note else ""

    def app_exited(self, code: int) -> bool:
        """The app was reaped: True when that was the restart's doing and a new app now runs."""
        return self.restart is not None and self.restart.app_exited(code)

    def end(self, code: int) -> None:
        """The container ends: a restart that was waiting for ready failed with the app's exit."""
        if self.restart is not None and not self.over:
            self.restart.failed(f"the app exited (code {code}) before it was ready")
        self.over = True
        self.watcher.stop()
        self.poster.stop()
