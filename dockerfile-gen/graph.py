"""`tree graph`: the tree as Graphviz DOT, drawn to SVG or PNG by `dot`."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from dockerfile_gen import sizes as size_text
from dockerfile_gen.errors import GenError
from dockerfile_gen.tree import Tree

FORMATS = ("svg", "png", "dot")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def show_value(value: object) -> str:
    """YAML spelling: `true`, not Python's `True`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def to_dot(tree: Tree, root_from: Mapping[str, str] | None = None, sizes: Mapping[str, int | None] | None = None) -> str:
    """Each image's label: name:version, what it provides, its packages, and its size (its budget,
    and its built size when `sizes` is given)."""
    lines = [
        "digraph image_tree {",
        '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.4, ranksep=0.5];',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef4fb", color="#4a78a8", fontname="Helvetica", fontsize=11];',
        '  edge [color="#4a78a8"];',
    ]
    for name in tree.order:
        image = tree.images[name]
        base = image.image
        provides = ", ".join(f"{k}: {show_value(v)}" for k, v in sorted(image.provides.items()) if k in base.provides)
        parts = [f"{name}:{base.version}"]
        if provides:
            parts.append(provides)
        if image.own_packages:
            parts.append(f"+{len(image.own_packages)} packages")
        if base.size_budget_mb is not None or sizes is not None:
            parts.append(size_text.describe((sizes or {}).get(name), base.size_budget_mb, sizes is not None))
        label = "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)
        lines.append(f'  {_q(name)} [label="{label}"];')
        if base.parent is not None:
            lines.append(f"  {_q(base.parent)} -> {_q(name)};")
        else:
            source = (root_from or {}).get(name) or base.from_ or (
                f"debootstrap {base.rootfs.variant} {base.rootfs.suite} (Debian mirror)" if base.rootfs else "")
            lines.append(f'  {_q("from:" + source)} [label={_q(source)}, shape=note, fillcolor="#f4f4f4", color="#888888"];')
            lines.append(f"  {_q('from:' + source)} -> {_q(name)} [style=dashed];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(tree: Tree, output: str, root_from: Mapping[str, str] | None = None,
                sizes: Mapping[str, int | None] | None = None) -> None:
    fmt = os.path.splitext(output)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise GenError(f"unknown format {fmt!r}: name the file .svg, .png or .dot", output)
    dot_text = to_dot(tree, root_from, sizes)
    if fmt == "dot":
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(dot_text)
        return
    dot = shutil.which("dot")
    if dot is None:
        raise GenError("graphviz is not installed (apt-get install graphviz)", "dot")
    result = subprocess.run([dot, f"-T{fmt}", "-o", output], input=dot_text.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise GenError(f"dot failed: {result.stderr.decode(errors='replace').strip()}", output)
