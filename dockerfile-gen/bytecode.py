"""Runs in the root image's build: keeps the compiled bytecode (.pyc) of the Python modules the
agent imports and removes the rest, which only the image's size pays for.

What the agent imports is measured, not listed: every module of the `bootstrap` package is imported,
and so is every module any of them names in an import statement, at module level or inside a
function (the helpers import psutil, requests, watchdog and prometheus-client lazily); the .pyc of
each module then in sys.modules is kept. Sources stay: a module whose .pyc is gone still imports,
compiled in memory (PYTHONDONTWRITEBYTECODE is set in the image). Only Debian's Python directories
are pruned, never the agent's own (/usr/local).

Usage (the root's Dockerfile): PYTHONPATH=AGENT_SITE python3 -m dockerfile_gen.bytecode
AGENT_SITE/bootstrap DIR... (the agent's package directory, then the directories to prune).
Standard library only.
"""
from __future__ import annotations

import ast
import importlib
import os
import sys
from collections.abc import Iterable, Iterator


def agent_modules(package_dir: str, package: str = "bootstrap") -> set[str]:
    """The agent's modules and every module name an import statement in them names."""
    names: set[str] = set()
    for dirpath, _, files in os.walk(package_dir):
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = os.path.join(dirpath, file)
            rel = os.path.relpath(path, package_dir)[:-3].replace(os.sep, ".")
            if not rel.endswith("__main__"):  # importing it would run the command line
                names.add(f"{package}.{rel}".removesuffix(".__init__"))
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_all(names: Iterable[str]) -> set[str]:
    """Imports each name that is a module (`from X import f` names f too); returns the .pyc paths
    of every module loaded."""
    for name in sorted(names):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a function or class name, or a platform-only module
            continue
    return {cached for module in list(sys.modules.values()) if isinstance(cached := getattr(module, "__cached__", None), str)}


def bytecode_files(directories: Iterable[str]) -> Iterator[str]:
    for directory in directories:
        for dirpath, _, files in os.walk(directory):
            if os.path.basename(dirpath) == "__pycache__":
                yield from (os.path.join(dirpath, f) for f in files if f.endswith(".pyc"))


def prune(directories: Iterable[str], keep: set[str]) -> tuple[int, int]:
    """Removes every .pyc under `directories` not in `keep`; returns (files, bytes) removed."""
    count = size = 0
    for path in bytecode_files(directories):
        if path not in keep:
            size += os.path.getsize(path)
            os.unlink(path)
            count += 1
    return count, size


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python3 -m dockerfile_gen.bytecode AGENT_PACKAGE_DIR DIR...", file=sys.stderr)
        return 64
    keep = import_all(agent_modules(argv[0], os.path.basename(os.path.normpath(argv[0]))))
    count, size = prune(argv[1:], keep)
    print(f"bytecode: kept {len(keep)} modules' .pyc, removed {count} files ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
