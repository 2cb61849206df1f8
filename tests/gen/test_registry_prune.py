"""`replicate --prune` against in-memory registries: it deletes only what the state file proves was
copied from the master and the master no longer has, refuses when the master's listing cannot prove
it, and never deletes a manifest a kept tag or a kept index uses."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockerfile_gen.cli import main
from tests.support.fake_registry import FakeRegistry


@dataclass
class Pair:
    master: FakeRegistry
    replica: FakeRegistry
    state: Path
    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture

    def run(self, *flags: str) -> tuple[int, str, str]:
        """Exit code, stdout, and stderr: the error lines, then the log lines (progress, prune)."""
        self.caplog.clear()
        code = main(["replicate", "--from", self.master.host, "--to", self.replica.host, "--insecure", *flags])
        out, err = self.capsys.readouterr()
        return code, out, err + "".join(f"{record.getMessage()}\n" for record in self.caplog.records)

    def recorded(self) -> dict[str, dict[str, str]]:
        """The state file's repo -> {tag: digest} for this master and replica."""
        data = json.loads(self.state.read_text())
        repos = data["copied"][self.master.host][self.replica.host]
        return {repo: {tag: entry["digest"] for tag, entry in tags.items()} for repo, tags in repos.items()}


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         caplog: pytest.LogCaptureFixture) -> Iterator[Pair]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    caplog.set_level(logging.INFO, logger="dockerfile_gen")
    master, replica = FakeRegistry(), FakeRegistry()
    yield Pair(master, replica, tmp_path / "state" / "dockerfile-gen" / "replication.json", capsys, caplog)
    master.close()
    replica.close()


def synced(pair: Pair) -> None:
    """The replica holds what the master holds, and a replicate run has recorded it."""
    pair.master.copy_to(pair.replica)
    code, out, err = pair.run()
    assert code == 0 and "0 copied, 0 tags moved" in out and " 0 failed" in out, out + err


def test_replica_only_repositories_and_tags_are_never_deleted(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    synced(pair)
    pair.replica.image("local/only", "1", "only here")  # never on the master
    pair.replica.image("apps/x", "hotfix", "pushed to the replica by hand")
    before = pair.replica.tags_of()
    code, out, err = pair.run("--prune")  # no --repo: every repository
    assert code == 0, err
    assert pair.replica.tags_of() == before and pair.replica.deletes() == []
    assert "pruned" not in out, out


def test_what_was_copied_and_is_gone_from_the_master_is_pruned(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    old = pair.master.image("apps/x", "2", "x2")
    gone = pair.master.image("apps/y", "1", "y1")
    synced(pair)
    assert pair.recorded() == {"apps/x": {"1": pair.master.repos["apps/x"].tags["1"], "2": old}, "apps/y": {"1": gone}}
    pair.master.delete("apps/x", old)
    del pair.master.repos["apps/y"]  # the whole repository: its tag list answers 404
    code, out, err = pair.run("--prune")
    assert code == 0, err
    assert "2 pruned" in out, out
    assert sorted(pair.replica.deletes()) == [f"/v2/apps/x/manifests/{old}", f"/v2/apps/y/manifests/{gone}"]
    assert pair.recorded() == {"apps/x": {"1": pair.master.repos["apps/x"].tags["1"]}}
    assert pair.run("--prune")[0] == 0 and len(pair.replica.deletes()) == 2  # nothing left to do


def refused(pair: Pair) -> str:
    before = pair.replica.tags_of()
    code, out, err = pair.run("--prune")
    assert code == 69, out + err
    lines = err.splitlines()  # nothing was logged: the refusal comes before any copy
    assert out == "" and len(lines) == 1 and lines[0].startswith("dockerfile-gen: error: --prune: refused: "), lines
    assert pair.replica.deletes() == [] and pair.replica.tags_of() == before
    return lines[0]


def test_an_empty_master_catalog_refuses_to_prune(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    synced(pair)
    pair.master.catalog = []  # an account without catalog rights
    assert "catalog lists no repository" in refused(pair)


def test_a_cut_short_catalog_refuses_to_prune(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    pair.master.image("apps/y", "1", "y1")
    synced(pair)
    pair.master.catalog = ["apps/x"]  # apps/y still has tags, but the catalog leaves it out
    assert "the catalog does not list apps/y, which still has tags: the catalog is incomplete" in refused(pair)


def test_a_repository_whose_tags_cannot_be_listed_refuses_to_prune(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    pair.master.image("apps/y", "1", "y1")
    synced(pair)
    pair.master.catalog = ["apps/x"]
    pair.master.forbidden = {"apps/y"}
    assert "cannot tell whether apps/y is gone from the master" in refused(pair)


def test_a_tag_changed_on_the_replica_since_the_copy_is_left_alone(pair: Pair) -> None:
    copied = pair.master.image("apps/x", "1", "x1")
    pair.master.image("apps/x", "2", "x2")
    synced(pair)
    mine = pair.replica.image("apps/x", "1", "re-pushed to the replica")
    pair.master.delete("apps/x", copied)
    code, out, err = pair.run("--prune")
    assert code == 0, err
    assert pair.replica.deletes() == [] and pair.replica.repos["apps/x"].tags["1"] == mine
    assert "apps/x:1 left alone: it is" in err and "not what was copied" in err, err
    assert "1" not in pair.recorded()["apps/x"]


def test_dry_run_prints_what_would_be_deleted_and_deletes_nothing(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    old = pair.master.image("apps/x", "2", "x2")
    synced(pair)
    pair.master.delete("apps/x", old)
    state = pair.state.read_bytes()
    code, out, err = pair.run("--dry-run")
    assert code == 0, err
    assert f"would delete on {pair.replica.host}: apps/x:2 ({old})" in out.splitlines(), out
    assert "1 manifest(s) would be pruned; nothing was copied or deleted" in out, out
    assert pair.replica.deletes() == [] and pair.state.read_bytes() == state
    code, out, err = pair.run("--prune")
    assert code == 0 and "1 pruned" in out and pair.replica.deletes() == [f"/v2/apps/x/manifests/{old}"], out + err


def test_min_age_counts_from_the_first_prune_that_found_it_gone(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    old = pair.master.image("apps/x", "2", "x2")
    synced(pair)
    pair.master.delete("apps/x", old)
    code, out, err = pair.run("--prune", "--min-age", "1h")
    assert code == 0 and pair.replica.deletes() == [], out + err
    assert "apps/x:2 gone from the master since" in err and "deleted once it is gone 1h" in err, err
    data = json.loads(pair.state.read_text())
    entry = data["copied"][pair.master.host][pair.replica.host]["apps/x"]["2"]
    entry["gone_since"] -= 2 * 3600  # as if that run was two hours ago
    pair.state.write_text(json.dumps(data))
    code, out, err = pair.run("--prune", "--min-age", "1h")
    assert code == 0 and pair.replica.deletes() == [f"/v2/apps/x/manifests/{old}"], out + err


def test_a_bad_min_age_is_one_line(pair: Pair) -> None:
    code, out, err = pair.run("--prune", "--min-age", "soon")
    assert code == 65 and out == ""
    assert err.splitlines() == ["dockerfile-gen: error: --min-age: 'soon' is not an age: give a number with "
                                "s, m, h or d (e.g. 90m, 12h, 7d)"], err


def test_a_corrupt_state_file_is_one_line(pair: Pair) -> None:
    pair.master.image("apps/x", "1", "x1")
    pair.state.parent.mkdir(parents=True)
    pair.state.write_text("{not json")
    code, out, err = pair.run("--prune")
    assert code == 65 and out == "", err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dockerfile-gen: error: {pair.state}: is not a replication state file"), lines


def indexed(pair: Pair) -> tuple[str, str, str]:
    """apps/multi:1 is an index of amd64 and arm64 images; apps/multi:amd64 names its amd64 child."""
    amd64 = pair.master.image("apps/multi", "amd64", "amd64 image")
    arm64 = pair.master.image("apps/multi", None, "arm64 image")
    index = pair.master.index("apps/multi", "1", {"amd64": amd64, "arm64": arm64})
    synced(pair)
    return index, amd64, arm64


def test_a_child_of_a_kept_index_is_never_deleted(pair: Pair) -> None:
    index, amd64, arm64 = indexed(pair)
    pair.master.untag("apps/multi", "amd64")  # the tag goes; the index that uses its manifest stays
    code, out, err = pair.run("--prune")
    assert code == 0, err
    assert pair.replica.deletes() == []
    assert {f"apps/multi@{d}" for d in (index, amd64, arm64)} <= set(pair.replica.tags_of())
    assert "apps/multi:amd64 kept: its manifest is used by apps/multi:1" in err, err
    assert pair.recorded()["apps/multi"] == {"1": index, "amd64": amd64}  # still to prune once the index goes


def test_a_stale_index_goes_and_its_child_a_kept_tag_uses_stays(pair: Pair) -> None:
    index, amd64, _ = indexed(pair)
    pair.master.untag("apps/multi", "1")
    code, out, err = pair.run("--prune")
    assert code == 0 and "1 pruned" in out, out + err
    assert pair.replica.deletes() == [f"/v2/apps/multi/manifests/{index}"]
    assert pair.replica.repos["apps/multi"].tags == {"amd64": amd64}
