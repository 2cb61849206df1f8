"""The one logger: `bootstrap: LEVEL: message` lines on stderr.

Written with os.write on fd 2 rather than the logging package, to keep PID 1's imports and
start-up small; the forked helpers use the same functions.
"""
from __future__ import annotations

import os

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_threshold = [20]  # a one-element list: set once by cli from BOOTSTRAP_LOG_LEVEL


def set_level(name: str) -> None:
    _threshold[0] = _LEVELS.get(name.lower(), 20)


def _emit(level: str, message: str) -> None:
    if _LEVELS[level] >= _threshold[0]:
        try:
            os.write(2, f"bootstrap: {level}: {message}\n".encode(errors="replace"))
        except OSError:
            pass  # stderr closed: nothing sensible left to report to


def debug(message: str) -> None:
    _emit("debug", message)


def info(message: str) -> None:
    _emit("info", message)


def warning(message: str) -> None:
    _emit("warning", message)


def error(message: str) -> None:
    _emit("error", message)
