#!/usr/bin/env python3
"""A test app in the style of dumb-init's print_signals: it prints `ready pid=N`, then one
line for every signal it receives, and can exit with a code, ignore TERM, spawn orphans,
start a grandchild in its process group, or write a burst of output."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def say(text: str) -> None:
    os.write(1, f"{text}\n".encode())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="app")
    parser.add_argument("--exit", type=int, help="exit at once with this code")
    parser.add_argument("--kill-self", help="die at once of this signal (e.g. SEGV)")
    parser.add_argument("--ignore-term", action="store_true", help="print TERM but keep running")
    parser.add_argument("--term-exit", type=int, help="on TERM exit with this code instead of dying of it")
    parser.add_argument("--orphans", type=int, default=0, help="leave this many orphaned grandchildren")
    parser.add_argument("--grandchild", action="store_true", help="start a grandchild that echoes signals too")
    parser.add_argument("--burst", type=int, default=0, help="write N lines to stdout and to stderr, then exit 0")
    parser.add_argument("--touch", help="create this file once running (a readiness event)")
    args = parser.parse_args()

    if args.burst:
        out, err = sys.stdout, sys.stderr
        for n in range(args.burst):
            out.write(f"out {n}\n")
            err.write(f"err {n}\n")
        out.flush()
        err.flush()
        return 0
    if args.exit is not None:
        return args.exit
    if args.kill_self:
        os.kill(os.getpid(), signal.Signals["SIG" + args.kill_self])

    def on_signal(sig: int, _frame: object) -> None:
        say(f"{args.name} signal {signal.Signals(sig).name}")
        if sig == signal.SIGTERM and not args.ignore_term:
            if args.term_exit is not None:
                os._exit(args.term_exit)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}:
        try:
            signal.signal(sig, on_signal)
        except (OSError, ValueError):
            pass  # signals Python may not handle (e.g. 32/33 used by the C library)

    orphans = []
    for _ in range(args.orphans):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(0.2)  # outlive its parent, then exit: a zombie unless someone reaps it
                os._exit(0)
            os.write(write_end, f"{grandchild}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        orphans.append(int(os.read(read_end, 32)))
    if orphans:
        say(f"orphans {' '.join(map(str, orphans))}")
    if args.grandchild:
        import subprocess

        subprocess.Popen([sys.executable, __file__, "--name", "grandchild"])
    if args.touch:
        open(args.touch, "w").close()
    say(f"{args.name} ready pid={os.getpid()} pgid={os.getpgid(0)} ppid={os.getppid()}")
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
