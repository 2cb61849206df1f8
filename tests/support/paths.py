"""Where things are: the repository, and the console scripts of the venv running the tests."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))
DOCKERFILE_GEN = str(Path(sys.executable).with_name("dockerfile-gen"))
