"""The user-facing errors (BootstrapError, and SettingError for a setting), and the exit codes of the
contract (docs/contract.md, "Exit codes and errors")."""
from __future__ import annotations

EX_USAGE = 64  # sysexits.h: unknown subcommand, missing command
EX_CONFIG = 78  # sysexits.h: bad setting, missing path, unwritable log root
EX_NOEXEC = 126  # command found but not executable (shell convention)
EX_NOTFOUND = 127  # command not found (shell convention)


class BootstrapError(Exception):
    """An error the user can fix. `cli` prints it as one `bootstrap: error:` line and exits `code`."""

    def __init__(self, message: str, code: int = EX_CONFIG) -> None:
        super().__init__(message)
        self.code = code


class SettingError(BootstrapError):
    """A setting that is missing or invalid (exit 78). `field` names where it came from, as the
    user wrote it: an environment variable, `key in FILE`, or the key a caller passed (the
    generator passes the spec's dotted key); `reason` says what is allowed, without the field,
    so a caller can put it into its own message format."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message, EX_CONFIG)
        self.field = field
        self.reason = reason


class UsageError(BootstrapError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EX_USAGE)
