"""The layout shows the architecture, and stays that way: three programs in packages of their own
(PID 1, the helpers it forks, the node tool), the generator apart from the agent, no unit too big to
read, and the README's layout table true to the tree."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGES = {"bootstrap": REPO / "bootstrap", "dockerfile_gen": REPO / "dockerfile-gen"}
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 400, 200, 80


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of both packages."""
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def imported(path: Path) -> Iterator[tuple[str, int]]:
    """Every module an import statement in `path` names (wherever it stands: top level, a
    function, a TYPE_CHECKING block), with its line."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # `from bootstrap import settings` names a module too
                yield f"{node.module}.{alias.name}", node.lineno


def crossings(importer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name, path in modules():
        if name == importer or name.startswith(importer + "."):
            for target, line in imported(path):
                if target.startswith(forbidden) and not target.startswith(allowed):
                    found.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return found


def test_pid1_never_imports_a_helper_or_the_node_tool() -> None:
    """PID 1 starts its helpers by name in the forked child (pid1/forked.py); importing one in PID 1
    would load psutil, requests or watchdog into every container's PID 1."""
    assert crossings("bootstrap.pid1", ("bootstrap.helpers", "bootstrap.node")) == []
    assert crossings("bootstrap.settings", ("bootstrap.helpers", "bootstrap.node", "bootstrap.pid1")) == []


def test_the_node_tool_uses_only_what_all_programs_share() -> None:
    assert crossings("bootstrap.node", ("bootstrap.pid1", "bootstrap.helpers", "bootstrap.settings")) == []


def test_the_generator_uses_only_the_agents_settings_rules() -> None:
    """The generator checks a spec with the agent's own parsers, and nothing else of the agent."""
    assert crossings("dockerfile_gen", ("bootstrap",), ("bootstrap.settings", "bootstrap.errors")) == []


def test_the_shared_top_level_imports_no_program() -> None:
    top = [name for name, path in modules() if name.count(".") == 1 and path.parent == PACKAGES["bootstrap"]]
    found = []
    for name in top:
        found += crossings(name, ("bootstrap.pid1", "bootstrap.helpers", "bootstrap.node"))
    # cli dispatches to the programs: `run` to PID 1, `logs prune` to the node tool, lazily
    assert [f for f in found if not f.startswith("bootstrap/cli.py")] == []


def test_new_package_inits_are_empty() -> None:
    """An __init__ that imports would add to PID 1's start-up for every module below it."""
    inits = [p for root in PACKAGES.values() for p in root.rglob("__init__.py") if p.parent != root]
    assert inits and [str(p.relative_to(REPO)) for p in inits if p.read_text().strip()] == []


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_unit_is_too_big_to_read(name: str, path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{name}: split it by job"
    for node in ast.walk(ast.parse(source)):
        length = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
        if isinstance(node, ast.ClassDef):
            assert length <= MAX_CLASS_LINES, f"{name}.{node.name} is {length} lines"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name} is {length} lines"


def readme_layout() -> dict[str, set[str]]:
    """The README's layout table: package -> the modules its row names."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and re.fullmatch(r"`[\w.]+`", cells[0]):
            rows[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[1]))
    return rows


def test_readme_layout_names_every_module_and_no_other() -> None:
    on_disk: dict[str, set[str]] = {}
    for name, path in modules():
        if path.name == "__init__.py":
            on_disk.setdefault(name, set())
        elif path.stem != "__main__":
            package, module = name.rsplit(".", 1)
            on_disk.setdefault(package, set()).add(module)
    assert readme_layout() == on_disk
