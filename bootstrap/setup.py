"""The whole setup as one plan: run dir, config links, log directory. `plan` prints it; `run` applies it."""
from __future__ import annotations

from bootstrap import configs, logdirs, netinfo, users
from bootstrap.actions import Action, Planner
from bootstrap.record import frozen
from bootstrap.settings import Settings


@frozen
class SetupPlan:
    actions: tuple[Action, ...]
    ip: str
    log_dir: str
    user: users.User | None


def make_plan(settings: Settings) -> SetupPlan:
    user = users.resolve(settings.user) if settings.user else None
    planner = Planner()
    planner.ensure_dir(settings.run_dir)
    configs.plan(settings, planner)
    place = logdirs.plan(settings, planner, netinfo.detect_ip(settings.pod_ip),
                         (user.uid, user.gid) if user else None)
    return SetupPlan(tuple(planner.actions), place.ip, place.directory, user)
