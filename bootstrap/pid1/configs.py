"""Config links: conf/<path> becomes an absolute symlink to conf.d/{common,<env>}/<path>, plus `links:`."""
from __future__ import annotations

import os

from bootstrap.errors import BootstrapError
from bootstrap.pid1.actions import Action, Planner, under
from bootstrap.settings.parsers import COMMON_DIR
from bootstrap.settings.table import Settings

KUBELET_PREFIX = ".."  # the kubelet's own entries in a ConfigMap volume: ..data, ..2024_01_01_…


def layer_files(layer_dir: str) -> dict[str, str]:
    """Relative path -> absolute source, for every entry below layer_dir that is not a real
    directory. A symlink to a directory is linked as one entry (os.walk does not descend into it,
    which also keeps a link cycle from looping). Names starting with `..` are skipped: in a
    ConfigMap volume they are the kubelet's (`..data`, the `..<timestamp>` directories; no key
    may start with `..`), and each key is a link `name -> ..data/name` that is linked as a file."""
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(layer_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(KUBELET_PREFIX))
        filenames = [f for f in filenames if not f.startswith(KUBELET_PREFIX)]
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + linked_dirs:
            source = os.path.join(dirpath, name)
            files[os.path.relpath(source, layer_dir)] = os.path.abspath(source)
    return files


def without_shadowed(common: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """common/ minus what <env>/ shadows: the same path, and also a file where <env>/ has a
    directory (common/a vs env/a/b) or a directory where it has a file (common/a/b vs env/a)."""
    env_dirs = {os.path.dirname(rel) for rel in env}
    env_dirs |= {d for rel in env_dirs for d in _parents(rel)}
    return {rel: source for rel, source in common.items()
            if rel not in env and rel not in env_dirs and not any(p in env for p in _parents(rel))}


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def _fill(text: str, where: str, settings: Settings) -> str:
    try:
        return text.format(env=settings.env, app=settings.app_name)
    except (KeyError, IndexError, ValueError) as exc:
        # str.format raises KeyError('pod') for {pod}: report it like any bad setting, not a traceback
        raise BootstrapError(f"{where}={text!r} is invalid: only the placeholders {{env}} and {{app}} are "
                             f"allowed, with balanced braces ({exc!s})") from None


def layer_dirs(settings: Settings) -> list[str]:
    """The config layers, weakest first: conf.d/common/, conf.d/<env>/, and the overlay when set."""
    dirs = [os.path.join(settings.conf_source, COMMON_DIR), os.path.join(settings.conf_source, settings.env)]
    return dirs + ([settings.conf_overlay] if settings.conf_overlay else [])


def merged_layers(settings: Settings) -> dict[str, str]:
    """Relative path -> source over every layer, a stronger layer shadowing a weaker one."""
    merged: dict[str, str] = {}
    for layer in layer_dirs(settings):
        files = layer_files(layer)
        merged = {**without_shadowed(merged, files), **files}
    return merged


def wanted_links(settings: Settings) -> dict[str, str]:
    """Link path -> source. `<env>/` wins over `common/`, the overlay over both; `links:` entries
    come last."""
    wanted: dict[str, str] = {}
    for rel, source in merged_layers(settings).items():
        wanted[os.path.join(settings.conf_target, rel)] = source
    for n, link in enumerate(settings.links):
        source = _fill(link.source, f"links[{n}].source", settings)
        resolved = os.path.normpath(os.path.join(settings.app_home, source))
        real_home = os.path.realpath(settings.app_home)
        if (os.path.isabs(source) or not under(resolved, settings.app_home) or resolved == settings.app_home
                or not under(os.path.realpath(resolved), real_home)):  # a symlink inside may lead out
            raise BootstrapError(f"links[{n}].source={link.source!r} leaves APP_HOME ({settings.app_home}); "
                                 "use a path relative to APP_HOME without '..'")
        if not os.path.lexists(resolved):
            raise BootstrapError(f"links[{n}].source={link.source!r}: {resolved} does not exist; "
                                 "fix the path or add the file to the image")
        target = os.path.normpath(os.path.join(settings.app_home, _fill(link.target, f"links[{n}].target",
                                                                         settings)))
        wanted[target] = resolved
    return wanted


def plan(settings: Settings, planner: Planner) -> None:
    wanted = wanted_links(settings)
    planner.ensure_dir(settings.conf_target)

    def ours(dest: str) -> bool:
        # A link into the config source, the overlay or APP_HOME is one we made for some environment.
        return any(under(dest, d) for d in config_roots(settings)) or under(dest, settings.app_home)

    for path in sorted(wanted):
        stop_at = settings.conf_target if under(path, settings.conf_target) else "/"
        planner.ensure_dir(os.path.dirname(path), stop_at=stop_at, replaceable=ours if stop_at != "/" else None)
        planner.place_link(path, wanted[path], ours)
    handled = {a.path for a in planner.actions if a.kind in ("unlink-stale", "move-aside")}
    for path in stale_links(settings.conf_target, config_roots(settings), set(wanted) | handled):
        planner.add(Action("unlink-stale", path, os.readlink(path), reason="links to a file of another environment"))


def config_roots(settings: Settings) -> tuple[str, ...]:
    """Where config links point: the config source, and the overlay when set."""
    return (settings.conf_source,) + ((settings.conf_overlay,) if settings.conf_overlay else ())


def stale_links(conf_target: str, roots: tuple[str, ...], keep: set[str]) -> list[str]:
    """Links left in conf/ from another environment that this one does not provide (or to a key
    a ConfigMap no longer has): the app must not read a DEV file in PROD. Only links into the
    config roots (the config source and the overlay) are touched."""
    stale = []
    for dirpath, dirnames, filenames in os.walk(conf_target):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and path not in keep and any(under(os.readlink(path), r) for r in roots):
                stale.append(path)
    return stale
