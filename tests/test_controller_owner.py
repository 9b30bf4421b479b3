"""Two controllers on one target directory (issue 14, item 3).

The `.sealer-output` marker names the controller that wrote the target (state dir, repository,
branch, environments) and what it applied (commit, target). Another controller refuses the target,
at start-up and at every sync, and `/readyz` says so; a marker that does not say exactly what the
controller applied makes it render again. Real repositories, the real CLI (`--once` and running
processes with their HTTP server on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SEALER, snapshot
from test_controller import CANARY, GitOps, Running, secret


@pytest.fixture(scope="module")
def owner_template(tmp_path_factory: pytest.TempPathFactory) -> GitOps:
    return GitOps(tmp_path_factory.mktemp("owner"))


@pytest.fixture
def ops(tmp_path: Path, owner_template: GitOps) -> GitOps:
    return GitOps(tmp_path, owner_template)


@pytest.fixture
def running(ops: GitOps) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*extra: str) -> Running:
        args = ops.controller_args("--interval", "0.2s", "--max-backoff", "0.5s", "--listen", "127.0.0.1:0", *extra)
        r = Running(args, ops.env())
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def controller(ops: GitOps, env: str, state: Path, target: Path, *extra: str) -> list[str]:
    args = [SEALER, "controller", "--repo", str(ops.root), "--env", env, "--target", f"dir:{target}"]
    return [*args, "--state-dir", str(state), "-i", str(ops.keys[env]), *extra]


def once(ops: GitOps, env: str, state: Path, target: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = controller(ops, env, state, target or ops.out, "--once")
    return subprocess.run(args, capture_output=True, text=True, env=ops.env(), timeout=120)


def marker(target: Path) -> dict[str, object]:
    data = json.loads((target / ".sealer-output").read_text())
    assert isinstance(data, dict)
    return data


def only_error(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sealer: error: "), r.stderr
    assert "Traceback" not in r.stderr and CANARY not in r.stderr
    return lines[0]


def test_the_marker_names_the_controller_that_wrote_the_target(ops: GitOps) -> None:
    assert ops.once().returncode == 0
    m = marker(ops.out)
    assert m["state_dir"] == str(ops.state) and m["envs"] == ["prod"] and m["branch"] == "main"
    assert m["repo"] == str(ops.root) and m["target"] == f"dir:{ops.out}"
    assert m["commit"] == ops.git_repo.head.commit.hexsha and m["files"] == 1


def test_a_target_written_for_other_environments_is_refused(ops: GitOps, tmp_path: Path) -> None:
    """The review's case: a prod and a staging controller pointed at one directory."""
    ops.seal("deploy/staging/db.yaml", secret("db", namespace="shop-staging", password="staging-pw"))
    ops.commit("staging in its own namespace")
    prod_state, staging_state = ops.state, tmp_path / "staging-state"
    assert once(ops, "prod", prod_state).returncode == 0
    served = snapshot(ops.out)

    r = once(ops, "staging", staging_state)
    assert r.returncode == 1
    err = only_error(r)  # refused at start-up, before anything is fetched: one line, exit 1
    assert f"target {ops.out} belongs to the controller with state dir {prod_state}, for environments prod" in err
    assert snapshot(ops.out) == served  # prod's Secrets stay; staging's never land there
    assert not (staging_state / "state.json").exists()

    r = once(ops, "prod", prod_state)  # and prod still finds its own output in place
    assert r.returncode == 0 and "result=unchanged" in r.stderr
    assert snapshot(ops.out) == served


def test_a_running_controller_keeps_its_target_and_a_stopped_one_hands_it_over(
    ops: GitOps, running: Callable[..., Running], tmp_path: Path
) -> None:
    ctl = running()
    ctl.until("ready", ctl.ready)
    other = tmp_path / "other-state"
    r = once(ops, "prod", other)  # same repository, branch and environment, but another controller
    assert r.returncode == 1
    assert f"belongs to the controller with state dir {ops.state}, which is running" in only_error(r)
    proc = subprocess.run(  # a long-running one is refused as well, before it serves anything
        controller(ops, "prod", other, ops.out, "--listen", "127.0.0.1:0"),
        capture_output=True,
        text=True,
        env=ops.env(),
        timeout=60,
    )
    assert proc.returncode == 1 and "which is running" in only_error(proc)
    assert ctl.ready() and marker(ops.out)["state_dir"] == str(ops.state)
    assert ctl.stop() == 0

    r = once(ops, "prod", other)  # its writer has stopped: a controller of the same branch takes over
    assert r.returncode == 0 and "result=applied" in r.stderr, r.stderr
    assert marker(ops.out)["state_dir"] == str(other)
    r = ops.once()  # and back: the first one renders again, as the marker is not its own
    assert r.returncode == 0 and "result=applied" in r.stderr, r.stderr
    assert marker(ops.out)["state_dir"] == str(ops.state)


def test_a_marker_that_does_not_match_is_rendered_again(ops: GitOps, tmp_path: Path) -> None:
    assert ops.once().returncode == 0
    old_copy = tmp_path / "old-output"
    shutil.copytree(ops.out, old_copy)
    ops.seal("deploy/prod/db.yaml", secret("db", password="rotated-pw"))
    head = ops.commit("rotate the password")
    assert ops.once().returncode == 0
    current = snapshot(ops.out)
    assert b"rotated-pw" in current["secret.shop.db.yaml"]

    shutil.rmtree(ops.out)  # an older output comes back (a restored backup, a stale copy)
    shutil.copytree(old_copy, ops.out)
    r = ops.once()
    assert r.returncode == 0 and "result=applied" in r.stderr, r.stderr
    assert snapshot(ops.out) == {**current, ".sealer-output": (ops.out / ".sealer-output").read_bytes()}
    assert marker(ops.out)["commit"] == head

    legacy = {k: v for k, v in marker(ops.out).items() if k in ("commit", "envs", "files", "written_at")}
    (ops.out / ".sealer-output").write_text(json.dumps(legacy))  # as sealer wrote it before markers named owners
    r = ops.once()
    assert r.returncode == 0 and "result=applied" in r.stderr, r.stderr  # taken over, and rendered
    assert marker(ops.out)["state_dir"] == str(ops.state)
    assert ops.once().stderr.count("result=unchanged") == 1  # then it matches: nothing to do


def test_readyz_and_the_next_sync_see_another_controllers_output_swapped_in(
    ops: GitOps, running: Callable[..., Running], tmp_path: Path
) -> None:
    ctl = running()
    ctl.until("ready", ctl.ready)
    # A staging controller renders elsewhere; its output then replaces ours (an older sealer, a
    # controller on another host writing to the same volume, a copy by hand).
    theirs = tmp_path / "staging-out"
    assert once(ops, "staging", tmp_path / "staging-state", theirs).returncode == 0
    served_by_them = snapshot(theirs)
    aside = tmp_path / "ours-aside"
    os.rename(ops.out, aside)
    os.rename(theirs, ops.out)

    status, body = ctl.get("/readyz")
    assert status == 503, body
    assert f"the target now holds the output of the controller with state dir {tmp_path / 'staging-state'}" in body
    apply_errors = ("sealer_sync_errors_total", (("file", ""), ("reason", "apply")))
    ctl.until("a failed sync", lambda: ctl.metrics().get(apply_errors, 0) >= 1)
    line = ctl.wait_line("event=sync-error")
    assert "reason=apply" in line and "belongs to the controller with state dir" in line
    assert snapshot(ops.out) == served_by_them  # refused, not overwritten: the operator decides
    assert ctl.get("/readyz")[0] == 503

    shutil.rmtree(ops.out)  # the operator removes the intruder's output: ours comes back
    ctl.until("ready again", ctl.ready)
    assert marker(ops.out)["state_dir"] == str(ops.state) and b"staging-pw" not in b"".join(snapshot(ops.out).values())
    assert ctl.stop() == 0
    assert "Traceback" not in "".join(ctl.lines)


def test_another_controllers_output_swapped_in_during_a_render_is_put_back(
    ops: GitOps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between the check and the swap: the tree the swap displaces is looked at again."""
    from sealer._controller import targets
    from sealer._controller.log import EventLog
    from sealer._controller.sync import Controller, Settings

    theirs = tmp_path / "staging-out"
    assert once(ops, "staging", tmp_path / "staging-state", theirs).returncode == 0
    served_by_them = snapshot(theirs)
    real_sync = targets._sync_tree

    def then_they_write(root: Path) -> None:  # the other controller's swap lands just now
        real_sync(root)
        if theirs.exists():
            os.rename(theirs, ops.out)

    monkeypatch.setattr(targets, "_sync_tree", then_they_write)
    settings = Settings(
        repo=str(ops.root),
        branch="main",
        envs=("prod",),
        target=targets.DirTarget(f"dir:{ops.out}", ops.out),
        state_dir=ops.state,
        identity_files=(str(ops.keys["prod"]),),
    )
    ctl = Controller(settings, log=EventLog(open(os.devnull, "w")))  # noqa: SIM115
    try:
        r = ctl.cycle()
    finally:
        ctl.close()
    assert not r.ok and r.reason == "apply" and "belongs to the controller with state dir" in (r.message or "")
    assert snapshot(ops.out) == served_by_them
    assert sorted(p.name for p in ops.out.parent.iterdir()) == ["secrets"]  # our new tree was removed
    assert not (ops.state / "state.json").exists()
