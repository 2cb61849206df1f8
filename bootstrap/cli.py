"""The command line. The only module that reads os.environ and sys.argv."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from bootstrap import __version__, log
from bootstrap.errors import BootstrapError, UsageError

USAGE = """usage: bootstrap run [--] [CMD ARGS...]    set up, then start and supervise CMD
                                               (or start: from bootstrap.yaml)
       bootstrap probe [--live | --startup]   exit 0 when ready (live, started), 1 otherwise
       bootstrap status                       print status.json
       bootstrap plan [--json] [--] [CMD...]  print every action run would take; change nothing
       bootstrap logs prune --root DIR [...]  remove, compress and cap dead log directories on a node
       bootstrap --version"""


def run_dir_from(environ: Mapping[str, str]) -> str:
    """`probe` and `status` read only BOOTSTRAP_RUN_DIR, never the settings file: a probe the
    kubelet runs every few seconds must not pay for parsing and validating settings."""
    from bootstrap.rundir import DEFAULT_RUN_DIR, RUN_DIR_VAR

    return environ.get(RUN_DIR_VAR) or DEFAULT_RUN_DIR


def _command_args(args: list[str]) -> list[str]:
    return args[1:] if args[:1] == ["--"] else args


def cmd_run(args: list[str], environ: Mapping[str, str]) -> int:
    from bootstrap import rundir
    from bootstrap.pid1 import jvm, loglock
    from bootstrap.pid1.plan import apply_plan, make_plan
    from bootstrap.pid1.supervisor import launch
    from bootstrap.settings import resolve

    settings = resolve.load(environ)
    rundir.forget_previous(settings.run_dir)  # an emptyDir run dir outlives a restarted container
    command = resolve.require_command(settings, _command_args(args))
    plan = make_plan(settings, command, environ)
    phases = apply_plan(plan)
    # The log dir is live from before the start record until after the exit record (README: log lifecycle).
    lock = loglock.hold(plan.log_dir, recreate=lambda: apply_plan(make_plan(settings, command, environ)))
    try:
        return launch(settings, plan, command, jvm.environment(plan.jvm, environ), phases)
    finally:
        loglock.release(lock)


def cmd_plan(args: list[str], environ: Mapping[str, str]) -> int:
    import json

    from bootstrap.pid1 import jvm
    from bootstrap.pid1.plan import make_plan
    from bootstrap.settings import resolve

    as_json = bool(args) and args[0] == "--json"
    after = args[1:] if as_json else args
    # options are checked before '--' is dropped: after it, '-x' is the command, not an option
    if after and after[0].startswith("-") and after[0] != "--":
        raise UsageError(f"unknown option {after[0]!r} for plan; use 'bootstrap plan [--json] [--] [CMD...]'")
    rest = _command_args(after)
    settings = resolve.load(environ)
    command = list(rest or settings.start)
    plan = make_plan(settings, tuple(command), environ)
    if as_json:
        doc = {
            "app": settings.app_name,
            "env": settings.env,
            "app_env": settings.app_env,
            "ip": plan.ip,
            "log_dir": plan.log_dir,
            "user": None if plan.user is None else {"name": plan.user.name, "uid": plan.user.uid,
                                                     "gid": plan.user.gid},
            "command": command,
            "config_file": settings.config_file,
            "actions": [a.as_dict() for a in plan.actions],
            "jvm": jvm.as_dict(plan.jvm) if plan.jvm else None,
        }
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return 0
    lines = [f"app {settings.app_name}, env {settings.env} (APP_ENV={settings.app_env}), ip {plan.ip}",
             f"log dir {plan.log_dir}",
             f"command {' '.join(command) if command else '(none: set start: or pass one)'}"]
    lines += [a.describe() for a in plan.actions] or ["nothing to change"]
    lines += jvm.describe(plan.jvm) if plan.jvm else []
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def cmd_probe(args: list[str], environ: Mapping[str, str]) -> int:
    from bootstrap.rundir import PROBE_KINDS, READY_PROBE, probe

    kinds: dict[tuple[str, ...], str] = {(): READY_PROBE, **{(f"--{name}",): name for name in PROBE_KINDS}}
    kind = kinds.get(tuple(args))
    if kind is None:
        raise UsageError(f"bad probe arguments {' '.join(args)!r}; use 'bootstrap probe [--live | --startup]'")
    return 0 if probe(run_dir_from(environ), kind) else 1


def cmd_status(args: list[str], environ: Mapping[str, str]) -> int:
    from bootstrap.rundir import STATUS_FILE

    if args:
        raise UsageError("'bootstrap status' takes no arguments")
    path = os.path.join(run_dir_from(environ), STATUS_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            sys.stdout.write(fh.read())
    except FileNotFoundError:
        log.error(f"no status at {path}: 'bootstrap run' has not started here, or BOOTSTRAP_RUN_DIR differs")
        return 1
    return 0


def cmd_logs(args: list[str], environ: Mapping[str, str]) -> int:
    from bootstrap.node import cli as prune_cli  # the node side only; `run` never loads it

    return prune_cli.main(args, environ)


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "probe": cmd_probe, "status": cmd_status, "logs": cmd_logs}


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = os.environ if environ is None else environ
    log.set_level(env.get(log.LEVEL_VAR, log.DEFAULT_LEVEL))
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE + "\n")
            return 0 if args else 64
        if args[0] == "--version":
            sys.stdout.write(f"bootstrap {__version__}\n")
            return 0
        command = COMMANDS.get(args[0])
        if command is None:
            raise UsageError(f"unknown command {args[0]!r}; use one of: {', '.join(COMMANDS)} (see --help)")
        return command(args[1:], env)
    except BootstrapError as exc:
        log.error(str(exc))  # one line, control characters escaped, long values cut
        return exc.code

