"""Resuming `sealer reseal --commit` after a real `kill -9` (issue 14, item 7).

A killed run leaves some files re-sealed on disk and nothing committed. Those files are current, so
the next plan no longer lists them; the re-run must still commit them, with its own, in one commit,
so that HEAD ends with no value on the retiring key. It must also remove the temp files the killed
writers left (`.NAME.<12 hex>.tmp`).

The kills are SIGKILL to the command's whole process group (tests/test_crash.py), at points chosen
by watching the files: after a quarter, a half and three quarters of them were replaced, and once
after every file was written but before `git add` (a `git` on PATH that waits there).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import git
from conftest import assert_clean_failure
from test_crash import SEALER, Fixture, build, check_repository, kids_of, kill_group, tokens_of

N_FILES = 240
TEMP = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


def git_env(fx: Fixture) -> dict[str, str]:
    home = fx.root.parent / "home"
    return {**fx.env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}


def make_git_repo(tmp_path: Path, n: int = N_FILES) -> tuple[Fixture, git.Repo]:
    """test_crash's repository (n sealed files, prod rotated), committed to a git repository."""
    fx = build(tmp_path, n)
    fx.env = git_env(fx)
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.name", "t"),
        ("config", "user.email", "t@example.com"),
        ("config", "commit.gpgsign", "false"),
        ("add", "-A"),
        ("commit", "-q", "-m", "prod rotated; values still on the old key"),
    ):
        subprocess.run(["git", *args], cwd=fx.root, env=fx.env, check=True, capture_output=True, timeout=60)
    return fx, git.Repo(fx.root)


def start(fx: Fixture, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
    return subprocess.Popen(
        [SEALER, "reseal", "--commit", "-j", "2", "-i", str(fx.old_key), *args],
        cwd=fx.root,
        env=env or fx.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def replaced(fx: Fixture, inodes: dict[str, int]) -> int:
    """How many files were replaced (a rename gives a new inode) since `inodes` was taken."""
    n = 0
    for rel, ino in inodes.items():
        with contextlib.suppress(FileNotFoundError):
            n += os.stat(fx.root / rel).st_ino != ino
    return n


def temp_files(fx: Fixture) -> list[str]:
    return sorted(p.name for p in (fx.root / "deploy/prod").iterdir() if TEMP.fullmatch(p.name))


def kill_when(fx: Fixture, p: subprocess.Popen[Any], inodes: dict[str, int], at_least: int) -> int:
    """SIGKILL the run once `at_least` files are replaced: at once if a temp file is there (a writer
    between create and rename), else after at most 40 more files. The files replaced then."""
    while p.poll() is None:
        done = replaced(fx, inodes)
        if done >= at_least and (temp_files(fx) or done >= at_least + 40):
            break
    alive = p.poll() is None
    kill_group(p)
    assert alive, f"the run ended before {at_least} files were replaced: it could not be killed mid-run"
    return replaced(fx, inodes)


def head_kids(repo: git.Repo, fx: Fixture) -> dict[str, set[tuple[str, ...]]]:
    """The key ids of every token of every original file, as HEAD holds it."""
    tree = repo.head.commit.tree
    return {rel: {kids_of(t) for t in tokens_of(tree[rel].data_stream.read().decode())} for rel in fx.original}


def assert_finished(fx: Fixture, repo: git.Repo, before: str, where: str) -> git.Commit:
    """One commit after `before` holding every file, HEAD with no value on the old key, nothing
    left uncommitted or untracked (no temp file), the journal gone."""
    repo = git.Repo(fx.root)
    commit = repo.head.commit
    assert commit.parents and commit.parents[0].hexsha == before, f"{where}: not one commit on top of {before}"
    assert set(commit.stats.files) == set(fx.original), (
        f"{where}: the commit holds {len(commit.stats.files)} of {len(fx.original)} files"
    )
    on_old = {rel for rel, kinds in head_kids(repo, fx).items() if kinds != {(fx.new_kid,)}}
    assert not on_old, f"{where}: HEAD keeps {len(on_old)} file(s) on the old key, e.g. {sorted(on_old)[:3]}"
    status = repo.git.status("--porcelain", "--untracked-files=all")
    assert status == "", f"{where}: left behind:\n{status}"
    assert not (Path(repo.git_dir) / "sealer-reseal.journal").exists(), f"{where}: the journal is still there"
    assert check_repository(fx, where)["new"] == len(fx.original)
    return commit


def test_kill_9_of_reseal_commit_three_times_then_the_rerun_commits_every_moved_file(tmp_path: Path) -> None:
    fx, repo = make_git_repo(tmp_path)
    head = repo.head.commit.hexsha
    inodes = {rel: os.stat(fx.root / rel).st_ino for rel in fx.original}
    log = []
    for i, share in enumerate((0.25, 0.5, 0.75)):
        at_least = int(N_FILES * share)
        done = kill_when(fx, start(fx), inodes, at_least)
        where = f"kill {i + 1}/3 after {done} of {N_FILES} files (at least {at_least})"
        state = check_repository(fx, where)  # every file old or new, never torn
        assert state["new"] == done < N_FILES, (where, dict(state))
        assert git.Repo(fx.root).head.commit.hexsha == head, f"{where}: a commit was made before the kill"
        log.append(f"{where}; temp files left: {len(temp_files(fx))}")
    # What the killed writers may leave, planted for certain: a temp file of a file still to
    # re-seal and one of a file re-sealed before a kill, both brand new (no age rule removes them).
    stale = next(rel for rel, ino in inodes.items() if os.stat(fx.root / rel).st_ino == ino)
    moved = next(rel for rel, ino in inodes.items() if os.stat(fx.root / rel).st_ino != ino)
    for rel in (stale, moved):
        p = fx.root / rel
        (p.parent / f".{p.name}.{os.urandom(6).hex()}.tmp").write_text("sealed text of a killed writer\n")

    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert r.returncode == 0, f"re-run after {log}: {r.stderr}"
    commit = assert_finished(fx, repo, head, f"re-run after {log}")
    assert "interrupted run" in r.stderr, r.stderr
    assert "re-sealed by an earlier run that was interrupted" in str(commit.message)
    for rel in (stale, moved):
        (line,) = [x for x in str(commit.message).splitlines() if x.startswith(f"{rel}:")]
        assert fx.old_kid in line and fx.new_kid in line, line
    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert r.returncode == 0 and "nothing to re-seal" in r.stderr, r.stderr
    assert git.Repo(fx.root).head.commit == commit
    print("\n" + "\n".join(log))


def gated_git(tmp_path: Path, gate: Path) -> dict[str, str]:
    """A PATH whose `git` touches `gate` and waits before `git add`: the re-sealed files are all
    written, nothing is staged or locked yet."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(
        f'#!/bin/sh\nfor a; do [ "$a" = add ] && {{ touch "{gate}"; sleep 60; }}; done\nexec {real} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_kill_9_after_the_last_write_before_the_commit_then_the_rerun_commits_them_all(tmp_path: Path) -> None:
    fx, repo = make_git_repo(tmp_path, 40)
    head = repo.head.commit.hexsha
    gate = tmp_path / "at-git-add"
    p = start(fx, env={**fx.env, **gated_git(tmp_path, gate)})
    deadline = time.monotonic() + 60
    while not gate.exists():
        assert p.poll() is None, "the run ended without reaching git add"
        assert time.monotonic() < deadline, "the run never reached git add"
        time.sleep(0.005)
    kill_group(p)
    assert check_repository(fx, "killed before git add")["new"] == 40
    assert git.Repo(fx.root).head.commit.hexsha == head

    # A dry run says what awaits the commit; the plan itself is empty (every file is current).
    r = fx.cli("reseal", "--dry-run")
    assert r.returncode == 0 and re.search(r"\b0 of \d+ value\(s\) in 0 file\(s\) would be", r.stderr), r.stderr
    assert "40 file(s) re-sealed by an interrupted reseal --commit are not committed yet" in r.stderr, r.stderr
    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert r.returncode == 0, r.stderr
    assert_finished(fx, repo, head, "re-run after a kill before git add")


def test_a_file_changed_after_the_interrupted_reseal_is_not_committed_by_the_rerun(tmp_path: Path) -> None:
    """The journal vouches only for the bytes the reseal wrote: a later edit stays uncommitted."""
    fx, repo = make_git_repo(tmp_path, 40)
    head = repo.head.commit.hexsha
    gate = tmp_path / "at-git-add"
    p = start(fx, env={**fx.env, **gated_git(tmp_path, gate)})
    deadline = time.monotonic() + 60
    while not gate.exists():
        assert p.poll() is None and time.monotonic() < deadline, "the run never reached git add"
        time.sleep(0.005)
    kill_group(p)
    edited = fx.root / "deploy/prod/svc007.yaml"
    edited.write_text(edited.read_text() + "# an edit after the reseal\n")

    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert r.returncode == 0, r.stderr
    commit = git.Repo(fx.root).head.commit
    assert commit.parents[0].hexsha == head
    assert set(commit.stats.files) == set(fx.original) - {"deploy/prod/svc007.yaml"}
    assert repo.git.status("--porcelain") == " M deploy/prod/svc007.yaml"


def test_a_failed_git_commit_is_one_clean_line_and_the_rerun_commits_the_files(tmp_path: Path) -> None:
    fx, repo = make_git_repo(tmp_path, 12)
    head = repo.head.commit.hexsha
    hook_path = Path(repo.git_dir) / "hooks" / "pre-commit"
    hook_path.parent.mkdir(exist_ok=True)
    hook_path.write_text("#!/bin/sh\necho 'error: the pre-commit hook says no' >&2\nexit 1\n")
    hook_path.chmod(0o755)

    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert_clean_failure(r, "git commit of the re-sealed files failed", "pre-commit hook says no", "run the same")
    assert git.Repo(fx.root).head.commit.hexsha == head
    assert check_repository(fx, "after the failed commit")["new"] == 12  # re-sealed, recorded, not committed

    hook_path.unlink()
    r = fx.cli("reseal", "--commit", "-i", str(fx.old_key))
    assert r.returncode == 0, r.stderr
    assert_finished(fx, repo, head, "re-run after a failed commit")
