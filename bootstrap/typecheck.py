"""`TYPE_CHECKING` without importing `typing`: typing costs PID 1 about 5 ms of start-up and each
helper memory, and only the type checker needs the names imported under `if TYPE_CHECKING:`. mypy
takes any name `TYPE_CHECKING` as true, wherever it comes from."""
TYPE_CHECKING = False
