"""Starting the app: its own session and process group (pgid = its pid), the signal mask it would
have had without us, default signal dispositions, and BOOTSTRAP_USER's ids.

Without a user, os.posix_spawnp does it all in one call. With a user, a plain fork + exec
does the id switch in the child; PID 1 is single-threaded here (signals are blocked before
any thread exists), so the fork is safe. Exec failures come back through a close-on-exec pipe.
"""
from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterable, Mapping

from bootstrap.errors import EX_NOEXEC, EX_NOTFOUND, BootstrapError
from bootstrap.pid1.users import User

# The calls the child makes before exec, in order; the one that failed is reported by its name, so an
# EPERM from the user switch is never mistaken for a file that cannot be executed.
SWITCH_STEPS = ("setsid", "setgroups", "setgid", "setuid")


def switch_error(step: str, err: int, user: User) -> BootstrapError:
    """A failed id switch, named as the call that failed."""
    if err == errno.EPERM:
        fix = (f"{step}() needs root with CAP_SETGID and CAP_SETUID: add them to the container (the chart's "
               "agent.rootCapabilities), or clear BOOTSTRAP_USER and run the container as the app's user")
    else:
        fix = "check BOOTSTRAP_USER and the container's security settings"
    return BootstrapError(f"cannot start the app as {user.name} (uid {user.uid}, gid {user.gid}): {step}() failed: "
                          f"{os.strerror(err)}; {fix}", EX_NOEXEC)


def exec_error(command: str, err: int) -> BootstrapError:
    """Maps a failed exec to the shell's codes: 127 not found, 126 not executable."""
    if err == errno.ENOENT:
        return BootstrapError(f"command not found: {command!r}; check the name and PATH", EX_NOTFOUND)
    return BootstrapError(f"cannot execute {command!r}: {os.strerror(err)}; check that it is an executable "
                          "file (chmod +x) with a valid interpreter line", EX_NOEXEC)


def spawn(argv: tuple[str, ...], environ: Mapping[str, str], sigmask: Iterable[int],
          default_signals: Iterable[int], user: User | None) -> int:
    env = dict(environ)
    if user is not None:
        env.setdefault("HOME", user.home)
        env["USER"] = env["LOGNAME"] = user.name
        return _fork_exec(argv, env, set(sigmask), set(default_signals), user)
    try:
        return os.posix_spawnp(argv[0], list(argv), env, setsid=True, setsigmask=set(sigmask),
                               setsigdef=set(default_signals))
    except OSError as exc:
        raise exec_error(argv[0], exc.errno or errno.ENOEXEC) from None


def _fork_exec(argv: tuple[str, ...], env: dict[str, str], sigmask: set[int], default_signals: set[int],
               user: User) -> int:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe-ish work, then exec or report errno and _exit
        step = "exec"
        try:
            os.close(read_end)
            step = "setsid"
            os.setsid()
            step = "setgroups"
            os.setgroups(list(user.groups))
            step = "setgid"
            os.setgid(user.gid)
            step = "setuid"
            os.setuid(user.uid)
            for sig in default_signals:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)
            step = "exec"
            os.execvpe(argv[0], list(argv), env)
        except OSError as exc:
            os.write(write_end, f"{step}:{exc.errno or errno.EPERM}".encode())
        finally:
            os._exit(127)
    os.close(write_end)
    report = os.read(read_end, 32)
    os.close(read_end)
    if report:
        os.waitpid(pid, 0)
        step, _, err = report.decode().partition(":")
        if step in SWITCH_STEPS:
            raise switch_error(step, int(err), user)
        raise exec_error(argv[0], int(err))
    return pid


def spawn_as(argv: tuple[str, ...], user: User, output_fd: int) -> int:
    """Starts a helper command (BOOTSTRAP_READY_CMD) as BOOTSTRAP_USER from a threaded process
    (the readiness checker): subprocess switches the ids in its C-level fork-exec, where a Python
    fork could deadlock on another thread's lock. Same shape as the app: its own session, no
    signal blocked (the mask is inherited from the calling thread, so that thread unblocks for
    the spawn; only PID 1 signals the checker, with SIGKILL, so the window costs nothing), stdin
    from /dev/null, stdout and stderr to output_fd. The caller reaps the pid."""
    import subprocess

    env = {**os.environ, "HOME": user.home, "USER": user.name, "LOGNAME": user.name}
    blocked = signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        proc = subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=output_fd, stderr=output_fd,
                                start_new_session=True, user=user.uid, group=user.gid,
                                extra_groups=list(user.groups))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    proc.returncode = 0  # reaped by the caller (waitpid/pidfd): Popen must not wait for it later
    return proc.pid
