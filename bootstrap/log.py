"""The one logger: `bootstrap: LEVEL: message` lines on stderr.

Written with os.write on fd 2 rather than the logging package, to keep PID 1's imports and
start-up small; the forked helpers use the same functions.
"""
from __future__ import annotations

import os

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# A row of the settings table (settings.Settings.log_level), defined here because cli applies it
# before anything else, also for `probe`, which never loads the settings module.
LEVEL_VAR = "BOOTSTRAP_LOG_LEVEL"
DEFAULT_LEVEL = "info"
_threshold = [LEVELS[DEFAULT_LEVEL]]  # a one-element list: set once by cli from LEVEL_VAR


def set_level(name: str) -> None:
    _threshold[0] = LEVELS.get(name.lower(), LEVELS[DEFAULT_LEVEL])


def _emit(level: str, message: str) -> None:
    if LEVELS[level] >= _threshold[0]:
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
