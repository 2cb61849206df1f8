"""Waiting for a condition where no event can be awaited directly."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Polls fn until it returns something truthy; used where no event can be awaited directly."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {fn}")
        time.sleep(interval)
