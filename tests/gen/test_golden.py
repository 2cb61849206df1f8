"""Golden cases: one folder each under golden/, holding

- app/app.yaml (and its conf.d/), the spec;
- tree/ (optional), an image tree; the repo's image-tree/ otherwise;
- args (optional), extra command-line words, one per line;
- expected/, the output: every generated file, explain.txt (stdout of --explain) and, for a spec
  that must fail, error.txt (stderr) instead of the generated files.

UPDATE_GOLDEN=1 rewrites expected/ from the current output; review the diff before committing.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from tests.gen.conftest import IMAGE_TREE, env_flag

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "app" / "app.yaml").is_file())


def _run(case: Path, out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(case)  # messages name "app/app.yaml", the same on every machine
    tree = "tree" if (case / "tree").is_dir() else str(IMAGE_TREE)
    extra = (case / "args").read_text().split() if (case / "args").is_file() else []
    code = main(["-q", "--tree", tree, "app", "app/app.yaml", "--explain", "-o", str(out), "--tag", "1.0.0", *extra])
    captured = capsys.readouterr()
    result = {"explain.txt": captured.out}
    if code != 0:
        result["error.txt"] = captured.err.replace(str(IMAGE_TREE), "IMAGE_TREE")
        assert not out.exists() or not any(out.iterdir()), "a failed spec must write nothing"
    else:
        assert captured.err == ""
        result.update({p.name: p.read_text() for p in sorted(out.iterdir())})
    return result


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    case = GOLDEN / name
    result = _run(case, tmp_path / "out", capsys, monkeypatch)
    expected_dir = case / "expected"
    if env_flag("UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        expected_dir.mkdir()
        for file_name, text in result.items():
            (expected_dir / file_name).write_text(text)
    expected = {p.name: p.read_text() for p in sorted(expected_dir.iterdir())}
    assert sorted(result) == sorted(expected), f"{name}: files differ; UPDATE_GOLDEN=1 rewrites expected/"
    for file_name, text in expected.items():
        assert result[file_name] == text, f"{name}/{file_name} differs; UPDATE_GOLDEN=1 rewrites expected/"


def test_every_case_has_expected_output() -> None:
    assert len(CASES) >= 10
    for name in CASES:
        assert (GOLDEN / name / "expected").is_dir(), f"{name}: run with UPDATE_GOLDEN=1 once"
