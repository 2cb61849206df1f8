"""http_endpoint's server on a free 127.0.0.1 port, in a thread: probe codes follow rundir.probe,
/status is the file, /metrics is Prometheus text from the collector."""
from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import rundir
from bootstrap.helpers import http_endpoint
from bootstrap.settings.table import Settings
from tests.support.net import http_get


@pytest.fixture
def app() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def served(tmp_path: Path, app: subprocess.Popen[bytes]) -> Iterator[tuple[int, Path]]:
    run = tmp_path / "run"
    run.mkdir()
    settings = Settings(app_name="demo", app_env="qa", env="qa", app_home=str(tmp_path), conf_source=str(tmp_path),
                        conf_target=str(tmp_path / "conf"), log_root=str(tmp_path), log_dir="{app}",
                        log_link=str(tmp_path / "logs"), run_dir=str(run), http_port=0)
    server = http_endpoint.AgentServer(("127.0.0.1", 0), settings, app.pid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], run
    server.shutdown()
    server.server_close()


def test_probes_follow_the_run_dir(served: tuple[int, Path], app: subprocess.Popen[bytes]) -> None:
    port, run = served
    assert [http_get(port, p)[0] for p in ("/ready", "/live", "/startup", "/status")] == [503, 503, 503, 503]
    rundir.write(str(run), "starting", fresh=True, pid=app.pid, supervisor_pid=os.getpid())
    assert [http_get(port, p)[0] for p in ("/ready", "/live", "/startup")] == [503, 200, 503]
    rundir.write(str(run), "ready")
    assert [http_get(port, p)[0] for p in ("/ready", "/live", "/startup")] == [200, 200, 200]
    rundir.write(str(run), "stopping")
    assert [http_get(port, p)[0] for p in ("/ready", "/live", "/startup")] == [503, 200, 200]
    code, body, kind = http_get(port, "/status")
    assert code == 200 and kind == "application/json" and body == (run / "status.json").read_bytes()
    rundir.write(str(run), "exited", exit_code=0)
    assert http_get(port, "/live")[0] == 503


def test_metrics_index_and_unknown_paths(served: tuple[int, Path]) -> None:
    port, _ = served
    code, body, kind = http_get(port, "/metrics?x=1")
    assert code == 200 and kind.startswith("text/plain; version=0.0.4")
    assert b"bootstrap_ready 0.0" in body and b"bootstrap_info{" in body
    assert b"process_cpu_seconds_total" not in body  # our registry only, never the global one
    assert http_get(port, "/")[0] == 200
    assert http_get(port, "/nope")[0] == 404


def test_clients_that_hang_up_early_are_counted_not_traced(served: tuple[int, Path],
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    """A client gone before its answer is written (a reset: ConnectionResetError, BrokenPipeError)
    is counted; the log gets at most one line a minute for all of them, never a traceback."""
    port, _ = served
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    assert http_get(port, "/")[0] == 200  # the server goes on
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert re.match(r"bootstrap: warning: http endpoint: 1 request\(s\) ended in an error, most often a client "
                    r"that went away before its answer \(last: (BrokenPipe|ConnectionReset)Error", lines[0]), lines
