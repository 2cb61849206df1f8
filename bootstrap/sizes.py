"""Sizes in bytes, in the two notations the project reads, each parsed here and nowhere else:

- Kubernetes quantities (`--max-bytes`, the chart's memory values): a plain number is bytes;
  k or K, M, G, T, P, E are powers of 1000; Ki, Mi, Gi, Ti, Pi, Ei are powers of 1024; a trailing
  B is allowed (10GB, 500MiB).
- HotSpot's size flags (-Xmx512m, -XX:MaxDirectMemorySize=2G): k, m, g, t in either case are
  powers of 1024, as the JVM reads them; no fractions.
"""
from __future__ import annotations

import re

QUANTITY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTPE]i?|[kK])?[bB]?$")
QUANTITY_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5,
                  "E": 1000**6, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5,
                  "Ei": 1024**6}
QUANTITY_HELP = ("bytes or a number with k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), "
                 "e.g. 10G or 500Mi")
JVM_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_quantity(text: str) -> float | None:
    """A Kubernetes quantity in bytes (maybe fractional: the caller decides how to round), or
    None when `text` is not one."""
    match = QUANTITY_RE.match(text.strip())
    if not match:
        return None
    return float(match.group(1)) * QUANTITY_UNITS[match.group(2) or ""]


def exact_quantity(text: str) -> tuple[int, int] | None:
    """A Kubernetes quantity in bytes as an exact fraction (numerator, denominator), so that the
    caller can tell 1.5Ki (1536) from 0.4 (not a whole byte); None when `text` is not one. Beyond
    40 integer digits the value is capped there (too large for any use either way), and a fraction
    with over 64 significant decimals is never whole (the largest unit has 2**60 or 10**18)."""
    match = QUANTITY_RE.match(text.strip())
    if not match:
        return None
    whole, _, fraction = match.group(1).partition(".")
    whole, fraction = whole.lstrip("0") or "0", fraction.rstrip("0")
    if len(whole) > 40:
        whole, fraction = "1" + "0" * 40, ""
    if len(fraction) > 64:
        return 1, 3  # not whole, and never looked at more closely
    return int(whole + fraction) * QUANTITY_UNITS[match.group(2) or ""], 10 ** len(fraction)


def parse_jvm_size(text: str) -> int | None:
    """A HotSpot size (512m, 2G, 1048576) in bytes, or None when `text` is not one."""
    text = text.strip().lower()
    scale = JVM_UNITS.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in JVM_UNITS else text
    return int(digits) * scale if digits.isdigit() else None
