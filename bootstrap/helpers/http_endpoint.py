"""The agent's HTTP endpoint: probes, status and Prometheus metrics, served from a helper process.

PID 1 forks this helper when BOOTSTRAP_HTTP_PORT is set (never serving anything itself, so its
budget stays as it is) and keeps it up until bootstrap exits: it answers 503 while the app stops.

- `/ready`, `/live`, `/startup`: 200 or 503, exactly `bootstrap probe` (`rundir.probe`), so the
  kubelet's httpGet probes fork nothing;
- `/status`: status.json as it is;
- `/metrics`: the Prometheus text format, from a `CollectorRegistry` of our own holding
  `metrics.Collector`. The `metrics` module, which imports prometheus_client and psutil at its
  top, is imported on the first scrape (in `registry`), so a pod that only uses the probes does
  not pay for them.

The helper inherits PID 1's blocked signals, so request threads never take a signal; PID 1 ends
it with SIGKILL, and it ends itself when PID 1 is gone (`service_actions`). A client that goes away
before its answer is written is counted, not traced: at most one log line a minute (`ClientErrors`).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bootstrap import log, rundir
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from bootstrap.settings.table import Settings

PROBES = {f"/{kind}": kind for kind in rundir.PROBE_KINDS}
PATHS = " ".join([*PROBES, "/status", "/metrics"])
REQUEST_TIMEOUT = 5.0  # a client that sends nothing loses its thread after this long
INDEX = f"bootstrap agent: {PATHS}\n".encode()
TEXT = "text/plain; charset=utf-8"
# generate_latest writes the classic text format; newer prometheus_client releases label it 1.0.0
# (UTF-8 names), which Prometheus 2.x does not know. Our names are all legacy names, so say 0.0.4.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CLIENT_ERRORS_EVERY = 60.0  # seconds between two log lines about clients that went away


def serve_main(settings: Settings, app_pid: int, heartbeat_fd: int) -> NoReturn:
    """Runs in the helper forked from PID 1; never returns. The heartbeat pipe is unused: PID 1
    sets no heartbeat timeout for this helper, whose only job is to answer."""
    assert settings.http_port is not None
    try:
        server = AgentServer(("0.0.0.0", settings.http_port), settings, app_pid)
    except OSError as exc:
        log.error(f"http endpoint: cannot listen on 0.0.0.0:{settings.http_port} ({exc.strerror}); "
                  "set BOOTSTRAP_HTTP_PORT to a free port")
        os._exit(70)  # PID 1 restarts us with a backoff
    log.debug(f"http endpoint: serving {PATHS} on port {settings.http_port}")
    server.serve_forever()
    os._exit(70)


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must never keep the helper from being replaced
    allow_reuse_address = True  # a restarted helper can bind at once
    # The listen backlog: the kernel's maximum, not socketserver's 5, so a burst of connects cannot
    # make the kernel drop the kubelet's SYN (its probe would wait a second for the retransmit).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], settings: Settings, app_pid: int) -> None:
        super().__init__(address, Handler)
        self.settings, self.app_pid = settings, app_pid
        self.run_dir = settings.run_dir
        self._metrics: tuple[Any, Any] | None = None
        self._metrics_lock = threading.Lock()
        self.parent = os.getppid()
        self.client_errors = ClientErrors()

    def service_actions(self) -> None:
        """Called by serve_forever about twice a second: end with the supervisor (the fallback to
        the kernel's parent-death signal, see pid1/forked.py)."""
        if os.getppid() != self.parent:
            os._exit(70)

    def handle_error(self, request: object, client_address: object) -> None:
        """Replaces socketserver's traceback on stderr: a request that failed is one counted line."""
        self.client_errors.add(sys.exc_info()[1])

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status code, content type, body) for a GET of path."""
        kind = PROBES.get(path)
        if kind is not None:
            ok = rundir.probe(self.run_dir, kind)
            return (200, TEXT, f"{kind}\n".encode()) if ok else (503, TEXT, f"not {kind}\n".encode())
        if path == "/status":
            try:
                with open(os.path.join(self.run_dir, rundir.STATUS_FILE), "rb") as fh:
                    return 200, "application/json", fh.read()
            except OSError:
                return 503, "application/json", b'{"state": null, "detail": "no status.json yet"}\n'
        if path == "/metrics":
            return self.scrape()
        if path == "/":
            return 200, TEXT, INDEX
        return 404, TEXT, f"not found: try {PATHS}\n".encode()

    def scrape(self) -> tuple[int, str, bytes]:
        try:
            registry, metrics = self.registry()
            return 200, METRICS_TYPE, metrics.exposition(registry)
        except Exception as exc:  # a broken collection is a 500 for this scrape, never a dead helper
            log.warning(f"http endpoint: collecting metrics failed: {exc!r}")
            return 500, TEXT, f"collecting metrics failed: {exc!r}\n".encode()

    def registry(self) -> tuple[Any, Any]:
        """(the registry, the metrics module), made on the first scrape."""
        with self._metrics_lock:
            if self._metrics is None:
                from bootstrap.helpers import metrics  # the one lazy import: prometheus_client and psutil

                self._metrics = (metrics.registry_for(self.settings, self.app_pid), metrics)
            return self._metrics


class ClientErrors:
    """Requests that ended in an exception, nearly always a client that went away mid-answer
    (BrokenPipeError, ConnectionResetError: a probe that timed out, a scraper that hung up). Each is
    counted; the log gets the count and the last error at most once every CLIENT_ERRORS_EVERY."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = self.unreported = 0
        self.reported_at: float | None = None

    def add(self, exc: BaseException | None) -> None:
        with self.lock:
            self.total += 1
            self.unreported += 1
            now = time.monotonic()
            if self.reported_at is not None and now - self.reported_at < CLIENT_ERRORS_EVERY:
                return
            count, total, self.unreported, self.reported_at = self.unreported, self.total, 0, now
        log.warning(f"http endpoint: {count} request(s) ended in an error, most often a client that went away "
                    f"before its answer (last: {exc!r}; {total} in all; at most one such line every "
                    f"{CLIENT_ERRORS_EVERY:g}s)")


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "bootstrap-agent"
    sys_version = ""
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self.respond(body=True)

    def do_HEAD(self) -> None:
        self.respond(body=False)

    def respond(self, body: bool) -> None:
        code, content_type, payload = self.server.answer(self.path.split("?", 1)[0])
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # a probe every few seconds would flood the container's log; errors are logged elsewhere
