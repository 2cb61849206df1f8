"""Loopback helpers: a free port, and one HTTP GET."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick, on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, str] | None:
    """(status, body, Content-Type) of GET http://127.0.0.1:PORT/PATH, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def http_code(port: int, path: str) -> int | None:
    answer = http_get(port, path)
    return None if answer is None else answer[0]


def accepts(port: int, timeout: float = 1.0) -> bool:
    """The kubelet's tcpSocket probe: a connect to 127.0.0.1:PORT that succeeds within
    timeoutSeconds (default 1 s, the kubelet's), then close."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def refused(port: int) -> bool:
    """Nobody listens: the connect is refused (a closed port, not a slow one). A reset counts too:
    it is what a connect queued on a listener that closes at that moment gets, and a kubelet
    probe fails on it just the same."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True
