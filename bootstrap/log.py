"""The one logger: `bootstrap: LEVEL: message` lines on stderr.

Written with os.write on fd 2 rather than the logging package, to keep PID 1's imports and
start-up small; the forked helpers use the same functions, and `cli` prints its one error line
here too. Every message is made safe in `one_line`: a value from the environment or a file can
neither forge a second line (newline), drive the terminal (ESC, BEL) nor flood the log.
"""
from __future__ import annotations

import os

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# A row of the settings table (settings.Settings.log_level), defined here because cli applies it
# before anything else, also for `probe`, which never loads the settings module.
LEVEL_VAR = "BOOTSTRAP_LOG_LEVEL"
DEFAULT_LEVEL = "info"
_threshold = [LEVELS[DEFAULT_LEVEL]]  # a one-element list: set once by cli from LEVEL_VAR
MAX_LINE = 1000  # characters of message kept: the head (what is wrong) and the tail (how to fix it)
# C0 controls, DEL and C1 controls (U+0085 is a line break to some terminals), plus the Unicode
# line and paragraph separators, become visible escapes such as \n and \x1b.
_ESCAPES = {c: ascii(chr(c))[1:-1] for c in (*range(0x20), *range(0x7f, 0xa0), 0x2028, 0x2029)}


def set_level(name: str) -> None:
    _threshold[0] = LEVELS.get(name.lower(), LEVELS[DEFAULT_LEVEL])


def one_line(message: str) -> str:
    """The message with control characters escaped and, when long, its middle cut out."""
    text = message.translate(_ESCAPES)
    if len(text) > MAX_LINE:
        head, tail = MAX_LINE * 2 // 3, MAX_LINE // 3
        text = f"{text[:head]}...[{len(text) - head - tail} characters cut]...{text[-tail:]}"
    return text


def _emit(level: str, message: str) -> None:
    if LEVELS[level] >= _threshold[0]:
        try:
            os.write(2, f"bootstrap: {level}: {one_line(message)}\n".encode(errors="replace"))
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
