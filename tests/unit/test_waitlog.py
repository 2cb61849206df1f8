"""The not-ready reason's schedule in the agent's log: 10 s, 30 s, 60 s into a spell, then every
5 minutes; a ready app starts a new spell when it turns not_ready."""
from __future__ import annotations

from bootstrap.helpers.waitlog import WaitLog, due


def logged_at(log: WaitLog, until: float, state: str = "starting") -> list[float]:
    return [t / 10 for t in range(int(until * 10) + 1) if log.note(state, "waiting for tcp", t / 10)]


def test_the_schedule_grows_then_repeats_every_five_minutes() -> None:
    assert [due(n) for n in range(6)] == [10, 30, 60, 360, 660, 960]
    assert logged_at(WaitLog(0.0), 1000) == [10, 30, 60, 360, 660, 960]


def test_one_line_names_the_state_and_the_reason() -> None:
    log = WaitLog(0.0)
    assert log.note("starting", "waiting for tcp 127.0.0.1:9029: connection refused", 9.9) == ""
    assert log.note("starting", "waiting for tcp 127.0.0.1:9029: connection refused", 10.2) == \
        "not ready for 10s (starting): waiting for tcp 127.0.0.1:9029: connection refused"
    assert log.note("failed", "not ready within 60s: tcp …", 61) == "not ready for 61s (failed): not ready within 60s: tcp …"


def test_ready_ends_the_spell_and_not_ready_starts_a_new_one() -> None:
    log = WaitLog(0.0)
    assert log.note("starting", "x", 12)
    assert log.note("ready", "checks passed", 13) == ""
    assert log.note("not_ready", "http: 503", 100) == ""  # the spell starts now
    assert log.note("not_ready", "http: 503", 109) == ""
    assert log.note("not_ready", "http: 503", 110) == "not ready for 10s (not_ready): http: 503"


def test_a_checker_restarted_after_ready_waits_for_the_next_spell() -> None:
    log = WaitLog(None)
    assert log.note("not_ready", "x", 5000) == "" and log.note("not_ready", "x", 5010)
