"""How `tree show`, `tree graph` and `app --explain` word a base image's size.

Sizes are uncompressed bytes as the engine reports them (podman image inspect's Size), in MB of
10^6 bytes as podman prints them; the budget is the image's `size_budget_mb` in the tree.
"""
from __future__ import annotations

MB = 1_000_000


def mb(size: int) -> str:
    return f"{size / MB:.0f} MB"


def describe(size: int | None, budget: int | None, looked_up: bool) -> str:
    """`182 MB (budget 200 MB)`, `not built here (budget 200 MB)`, or, when no engine was asked,
    `budget 200 MB`."""
    limit = f"budget {budget} MB" if budget is not None else "no budget"
    if size is not None:
        over = ", OVER BUDGET" if over_budget(size, budget) else ""
        return f"{mb(size)} ({limit}{over})"
    return f"not built here ({limit})" if looked_up else limit


def over_budget(size: int | None, budget: int | None) -> bool:
    return size is not None and budget is not None and size > budget * MB
