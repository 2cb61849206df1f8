#!/usr/bin/env python3
"""Runs a command as on a kernel booted with `ipv6.disable=1`: a seccomp filter makes every
socket(AF_INET6, ...) fail with EAFNOSUPPORT, which is what such a kernel answers. The filter is
inherited by every process the command starts; nothing outside them is affected.

    no_ipv6.py CMD...
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
# (AUDIT_ARCH_*, the socket syscall's number) per machine
ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
# offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6]
NR, ARCH, ARG0 = 0, 4, 16


def insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(arch: int, socket_nr: int) -> bytes:
    return b"".join([
        insn(BPF_LD_W_ABS, 0, 0, ARCH), insn(BPF_JEQ_K, 0, 5, arch),  # another ABI: allow
        insn(BPF_LD_W_ABS, 0, 0, NR), insn(BPF_JEQ_K, 0, 3, socket_nr),
        insn(BPF_LD_W_ABS, 0, 0, ARG0), insn(BPF_JEQ_K, 0, 1, socket.AF_INET6),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ])


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def main() -> None:
    if platform.machine() not in ARCHES:
        sys.exit(f"no_ipv6.py: no seccomp filter for {platform.machine()}")
    code = program(*ARCHES[platform.machine()])
    libc = ctypes.CDLL(None, use_errno=True)
    fprog = SockFprog(len(code) // 8, code)
    if (libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0):
        sys.exit(f"no_ipv6.py: seccomp: {os.strerror(ctypes.get_errno())}")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
