#!/usr/bin/env python3
"""Runs a command with small tmpfs mounts, in the private mount namespace it was started in
(`unshare --mount --propagation private`): nothing it mounts is seen outside, and everything is
gone when the namespace's last process exits.

    private_mounts.py [--tmpfs DIR:SIZE]... [--fill DIR:FREE]... [--ro DIR]... [--copy-out DEST] -- CMD...

--tmpfs mounts a tmpfs of SIZE (e.g. 256k) on DIR, keeping what DIR held (copied in first);
--fill leaves about FREE bytes free on DIR's filesystem (a file named .filler takes the rest);
--ro bind-mounts DIR on itself read-only; --copy-out copies each tmpfs to DEST/<n> after CMD
exits, so the test can read what was left behind. Exits with CMD's exit code.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def fill(directory: str, free: int) -> None:
    """Writes .filler until the filesystem is full, then gives back `free` bytes."""
    path = os.path.join(directory, ".filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        chunk = b"\0" * 4096
        while True:
            try:
                if os.write(fd, chunk) < len(chunk):
                    break
            except OSError:
                break
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - free))
    finally:
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tmpfs", action="append", default=[])
    parser.add_argument("--fill", action="append", default=[])
    parser.add_argument("--ro", action="append", default=[])
    parser.add_argument("--copy-out")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    tmpfs_dirs = []
    for spec in args.tmpfs:
        directory, size = spec.rsplit(":", 1)
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryDirectory() as keep:  # what the directory held goes onto the tmpfs
            saved = os.path.join(keep, "saved")
            shutil.copytree(directory, saved, symlinks=True)
            mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", directory)
            shutil.copytree(saved, directory, symlinks=True, dirs_exist_ok=True)
        tmpfs_dirs.append(directory)
    for spec in args.fill:
        directory, free = spec.rsplit(":", 1)
        fill(directory, int(free))
    for directory in args.ro:
        mount("--bind", directory, directory)
        mount("-o", "remount,bind,ro", directory)
    # The test signals the agent directly; this process only waits for it.
    code = subprocess.run(command, check=False).returncode
    if args.copy_out:
        for n, directory in enumerate(tmpfs_dirs):
            shutil.copytree(directory, os.path.join(args.copy_out, str(n)), symlinks=True)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
