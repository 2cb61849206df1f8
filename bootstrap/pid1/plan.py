"""The whole setup as one plan: run dir, config links, log directory. `plan` prints it; `run` applies it
and keeps how long each phase took, for the agent's metrics."""
from __future__ import annotations

import time
from collections.abc import Mapping

from bootstrap import log
from bootstrap.frozen import frozen
from bootstrap.pid1 import actions, cgroups, configs, jvm, logdirs, users
from bootstrap.pid1.actions import Action, Planner
from bootstrap.settings.table import Settings


@frozen
class SetupPlan:
    steps: tuple[tuple[str, tuple[Action, ...]], ...]  # (phase, its actions): ("config", …), ("logs", …)
    ip: str
    log_dir: str
    user: users.User | None
    plan_seconds: tuple[tuple[str, float], ...] = ()
    jvm: jvm.JvmPlan | None = None  # JVM flags for the app's JAVA_TOOL_OPTIONS, and the cgroup's limits

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(action for _, step in self.steps for action in step)


def make_plan(settings: Settings, command: tuple[str, ...] = (), environ: Mapping[str, str] | None = None) -> SetupPlan:
    user = users.switch(settings.user)  # None: the app runs as the agent does, nothing is chowned
    began = time.monotonic()
    config = Planner()
    config.ensure_dir(settings.run_dir)
    configs.plan(settings, config)
    planned = time.monotonic()
    logs = Planner()
    place = logdirs.plan(settings, logs, settings.pod_ip or detect_ip(),
                         (user.uid, user.gid) if user else None)
    logged = time.monotonic()
    java = jvm.make_plan(settings.jvm, cgroups.read_limits(), place.directory, settings.log_root,
                         environ or {}, command)
    return SetupPlan((("config", tuple(config.actions)), ("logs", tuple(logs.actions))), place.ip,
                     place.directory, user, (("config", planned - began), ("logs", logged - planned),
                                             ("jvm", time.monotonic() - logged)), java)


def detect_ip() -> str:
    from bootstrap.pid1 import netinfo  # socket, fcntl, struct: only when POD_IP is not given

    return netinfo.detect_ip(None)


def apply_plan(plan: SetupPlan) -> dict[str, float]:
    """Applies every step; returns seconds per phase, planning included."""
    seconds = dict(plan.plan_seconds)
    for phase, step in plan.steps:
        began = time.monotonic()
        actions.apply(step)
        seconds[phase] = seconds.get(phase, 0.0) + time.monotonic() - began
    began = time.monotonic()
    for failure in jvm.apply(plan.jvm):  # old heap dumps: a failed removal must not stop the app
        log.warning(f"cannot remove an old JVM file {failure}")
    seconds["jvm"] = seconds.get("jvm", 0.0) + time.monotonic() - began
    return seconds
