"""A ConfigMap volume written the way the kubelet writes it (pkg/volume/util/atomic_writer.go), step
by step, so the agent's config reload meets the real layout and the real order of changes:

    DIR/..2026_12_01_10_00_00.123456789/KEY   the payload, in a new timestamped directory
    DIR/..data -> ..2026_12_01_10_00_00.123456789
    DIR/KEY -> ..data/KEY                     one user-visible link per key

An update: write the payload into a new timestamped directory; make `..data_tmp` a link to it;
rename `..data_tmp` over `..data` (the atomic switch); link the keys that are new; remove the
old timestamped directory; remove the links of the keys that are gone.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"


class ConfigMapVolume:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys: set[str] = set()
        self.swapped_at = 0.0  # time.time() of the last rename over ..data

    def _timestamp_dir(self) -> Path:
        now = time.time()
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(now)) + f".{time.monotonic_ns() % 10**9:09d}"
        return self.dir / stamp

    def write(self, data: dict[str, str], before_swap: Callable[[], None] | None = None) -> None:
        """One update to exactly `data` (key -> text)."""
        old_target = os.readlink(self.dir / DATA) if (self.dir / DATA).is_symlink() else None
        new_dir = self._timestamp_dir()
        new_dir.mkdir()
        for key, text in data.items():
            (new_dir / key).write_text(text)
        tmp = self.dir / DATA_TMP
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(new_dir.name, tmp)
        if before_swap is not None:
            before_swap()
        self.swapped_at = time.time()
        os.rename(tmp, self.dir / DATA)
        for key in sorted(set(data) - self.keys):
            os.symlink(f"{DATA}/{key}", self.dir / key)
        if old_target is not None:
            shutil.rmtree(self.dir / old_target)
        for key in sorted(self.keys - set(data)):
            (self.dir / key).unlink()
        self.keys = set(data)

    def read(self) -> dict[str, str]:
        return {key: (self.dir / key).read_text() for key in sorted(self.keys)}
