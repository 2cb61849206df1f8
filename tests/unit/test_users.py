"""users.switch: which BOOTSTRAP_USER needs a switch, and the one line when it cannot be made
(the agent's uid and capabilities are faked here; tests/process/test_non_root.py runs them for real)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import BootstrapError
from bootstrap.pid1 import actions, logdirs, users


def as_uid(monkeypatch: pytest.MonkeyPatch, uid: int, gid: int, caps: bool = True) -> None:
    monkeypatch.setattr(users.os, "geteuid", lambda: uid)
    monkeypatch.setattr(users.os, "getegid", lambda: gid)
    monkeypatch.setattr(users, "has_capability", lambda bit: caps)


@pytest.mark.parametrize("spec", [None, ""])
def test_no_setting_is_no_switch(monkeypatch: pytest.MonkeyPatch, spec: str | None) -> None:
    as_uid(monkeypatch, 20001, 20001)
    assert users.switch(spec) is None


def test_the_agents_own_ids_are_no_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    as_uid(monkeypatch, 20001, 20001)
    assert users.switch("20001:20001") is None
    assert users.switch("20001") is None  # a uid without a passwd entry: its gid is the uid


def test_another_user_as_non_root_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    as_uid(monkeypatch, 20001, 20001)
    with pytest.raises(BootstrapError) as caught:
        users.switch("20002:20002")
    text = str(caught.value)
    assert "\n" not in text and caught.value.code == 78
    assert text.startswith("BOOTSTRAP_USER='20002:20002' asks to run the app as uid 20002 gid 20002")
    assert "the agent runs as uid 20001 gid 20001, not root" in text and "BOOTSTRAP_USER=" in text


def test_root_switches_and_names_missing_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    as_uid(monkeypatch, 0, 0)
    assert users.switch("20002:20002") == users.User(20002, 20002, (20002,), "20002", "/")
    as_uid(monkeypatch, 0, 0, caps=False)
    with pytest.raises(BootstrapError, match="runs as root without CAP_SETUID and CAP_SETGID"):
        users.switch("20002:20002")


def test_action_errors_name_the_real_cause(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(actions.os, "geteuid", lambda: 20001)
    chown = actions.Action("chown", str(tmp_path), uid=1, gid=1)
    assert "needs root with CAP_CHOWN (the agent runs as uid 20001)" in actions.fix_for(chown, PermissionError(1, "x"))
    mkdir = actions.Action("mkdir", str(tmp_path / "x"))
    assert "writable by uid 20001" in actions.fix_for(mkdir, PermissionError(13, "x", str(tmp_path)))
    assert "a writable mount" in actions.fix_for(mkdir, OSError(30, "x"))
    monkeypatch.setattr(actions.os, "geteuid", lambda: 0)
    assert "writable by root" in actions.fix_for(mkdir, PermissionError(13, "x", str(tmp_path)))


def test_log_dirs_are_0750_and_a_root_chown_keeps_a_setgid_group(tmp_path: Path) -> None:
    planner = actions.Planner()
    planner.ensure_dir(str(tmp_path / "a" / "b"), stop_at=str(tmp_path), mode=logdirs.DIR_MODE)
    actions.apply(planner.actions)
    assert all((tmp_path / p).stat().st_mode & 0o7777 == 0o750 for p in ("a", "a/b"))
    assert planner.actions[0].describe() == f"mkdir {tmp_path / 'a'} mode 0750"
    assert logdirs.owner_for(str(tmp_path), (5, 6)) == (5, 6)
    (tmp_path / "a").chmod(0o2750)
    assert logdirs.owner_for(str(tmp_path / "a"), (5, 6)) == (5, -1)
    assert actions.Action("chown", "/x", uid=5, gid=-1).describe() == "chown 5 /x"
