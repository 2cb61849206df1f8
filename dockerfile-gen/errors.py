"""The one user-facing error type. `cli` turns it into one `dockerfile-gen: error:` line and one exit code."""
from __future__ import annotations

EXIT_USAGE = 64  # sysexits.h EX_USAGE: the command line itself is wrong (unknown option, missing argument)
EXIT_USER_ERROR = 65  # sysexits.h EX_DATAERR: a spec, a tree file or an option is wrong
EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: a service needed for the whole job (the master registry) does not answer
EXIT_INCOMPLETE = 75  # sysexits.h EX_TEMPFAIL: part of the job is left (a replica was down); running again finishes it


class GenError(Exception):
    """An error the user can fix: a bad spec, a bad tree, a missing tool, a failed build.

    `where` is the file (or image name) and `key` the dotted key inside it, so every message
    reads `FILE: KEY: what is wrong`.
    """

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str, where: str = "", key: str = "") -> None:
        self.where = where
        self.key = key
        self.detail = message
        prefix = ": ".join(part for part in (where, key) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def with_exit_code(self, code: int) -> GenError:
        self.exit_code = code
        return self
