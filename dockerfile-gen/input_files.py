"""The generator's input files, read by the agent's bounded reader (bootstrap.settings.bounded):
a hostile or broken app spec, tree file or replication.yaml is one GenError naming the file,
never a traceback, unbounded time or memory."""
from __future__ import annotations

from typing import Any

from bootstrap.settings.bounded import FileError, FileKind, Limits, read
from dockerfile_gen.errors import GenError

# A spec is a few dozen lines and nests six levels (env_overrides.<env>.resources.requests.cpu);
# libyaml's parser keeps `batch` fast (docs/dockerfile-gen.md, "Generation").
APP_SPEC = FileKind(label="app spec", content="an app spec", size_hint="an app spec is a few dozen lines",
                    depth_hint="an app spec nests at most six levels", libyaml=True)
SPEC_LIMITS = Limits(max_bytes=1 << 20, max_depth=32, max_nodes=50_000)
# A tree file describes one base image and nests three levels (provides.users items).
TREE_FILE = FileKind(label="tree file", content="a tree file", size_hint="a tree file describes one image in a few dozen lines",
                     depth_hint="a tree file nests at most three levels", libyaml=True)
TREE_LIMITS = Limits(max_bytes=1 << 20, max_depth=16, max_nodes=50_000)


def read_input(path: str, kind: FileKind, limits: Limits) -> Any:
    """The parsed file (None when empty), or GenError: `PATH: what is wrong; the fix`."""
    try:
        return read(path, limits, kind)
    except FileError as exc:
        raise GenError(f"not valid YAML: {exc.syntax}" if exc.syntax else exc.detail, path) from None
