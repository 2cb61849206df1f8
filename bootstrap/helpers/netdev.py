"""The pod's network traffic: bytes received and sent per interface, from /proc/net/dev.

The agent lives in the pod's network namespace, so /proc/net/dev lists the pod's interfaces
(the loopback left out: traffic between the pod's own processes is not the pod's network use).
Counters are the kernel's, since the interface came up; they never go down while the pod lives.
"""
from __future__ import annotations

NET_DEV = "/proc/net/dev"


def read(path: str = NET_DEV) -> dict[str, tuple[int, int]]:
    """{interface: (received bytes, sent bytes)}, without `lo`; {} when the file cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()[2:]  # two header lines
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, sep, counters = line.partition(":")
        fields = counters.split()
        name = name.strip()
        if not sep or name == "lo" or len(fields) < 9:
            continue
        try:
            out[name] = (int(fields[0]), int(fields[8]))  # receive bytes, transmit bytes
        except ValueError:
            continue
    return out
