"""The controller's limits (issue 14, item 2): a commit's total size is capped, and blobs are read
once, one at a time, as they are wanted.

Real git repositories and the real `sealer controller --once`; the memory test drives the library's
`Controller` on a real repository (the existing no-change test does the same) and measures what
Python allocates during one cycle with tracemalloc. The pool outliving a SIGKILL is pinned in
tests/test_pool.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from conftest import snapshot
from test_controller import GitOps, log_events, secret

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def limits_template(tmp_path_factory: pytest.TempPathFactory) -> GitOps:
    return GitOps(tmp_path_factory.mktemp("limits"))


@pytest.fixture
def ops(tmp_path: Path, limits_template: GitOps) -> GitOps:
    return GitOps(tmp_path, limits_template)


def last_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("sealer: error: "), stderr
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def commit_same_blob_many_times(ops: GitOps, data: bytes, paths: list[str], message: str) -> str:
    """A commit whose tree names one blob at each of `paths`, made with git's plumbing (no work
    tree copies): big in the tree's sizes, small on disk."""
    blob = ops.tmp / "blob.yaml"
    blob.write_bytes(data)
    oid = ops.git("hash-object", "-w", str(blob)).stdout.strip()
    for rel in paths:
        ops.git("update-index", "--add", "--cacheinfo", f"100644,{oid},{rel}")
    ops.git("commit", "-q", "-m", message)
    return ops.git("rev-parse", "HEAD").stdout.strip()


def test_a_commit_over_the_total_cap_is_refused_with_a_flag_to_change_it(ops: GitOps) -> None:
    assert ops.once().returncode == 0
    good = snapshot(ops.out)
    applied = json.loads((ops.state / "state.json").read_text())["commit"]
    for i in range(6):  # six files of about 20 KB, each far under the 8 MiB cap for one file
        ops.seal(f"deploy/prod/big{i}.yaml", secret(f"big{i}", password=f"pw-{i}") + "#" * 20_000 + "\n")
    head = ops.commit("six files, 120 KB together")

    r = ops.once("--max-total-bytes", "64KiB")
    assert r.returncode == 1
    err = last_error(r.stderr)
    assert "sync failed (unsafe_path)" in err and f"commit {head[:12]}" in err
    assert "over the 65536 byte limit" in err and "--max-total-bytes" in err
    [line] = log_events(r.stderr, "sync-error")
    assert "reason=unsafe_path" in line and "file=" not in line  # the commit, not one file, is at fault
    assert snapshot(ops.out) == good  # fail closed: the last good output stays
    assert json.loads((ops.state / "state.json").read_text())["commit"] == applied
    assert str(ops.audit()[-1]["reason"]).startswith("unsafe_path: commit ")

    r = ops.once("--max-total-bytes", "1MiB")  # the flag raises the cap
    assert r.returncode == 0, r.stderr
    assert json.loads((ops.state / "state.json").read_text())["commit"] == head

    r = ops.once("--max-total-bytes", "lots")
    assert r.returncode == 2 and "'lots' is not a size" in r.stderr and "Traceback" not in r.stderr
    r = ops.once(env={"SEALER_CONTROLLER_MAX_TOTAL_BYTES": "0"})
    assert r.returncode == 2 and "must be more than zero" in r.stderr


def test_the_default_total_cap_refuses_34_files_of_8_mb(ops: GitOps) -> None:
    """The review's case: many files each just under the per-file cap. 34 × 8 MB pass 256 MiB."""
    from sealer._fsio import MAX_FILE_BYTES

    data = (secret("big", password="x") + ("#" * 1023 + "\n") * (MAX_FILE_BYTES // 1024 - 8)).encode()
    assert len(data) <= MAX_FILE_BYTES
    paths = [f"deploy/prod/big{i:02d}.yaml" for i in range(34)]
    head = commit_same_blob_many_times(ops, data, paths, "34 files of 8 MB")
    r = ops.once()
    assert r.returncode == 1
    err = last_error(r.stderr)
    assert "sync failed (unsafe_path)" in err and f"commit {head[:12]}" in err
    assert "the 36 files of prod are " in err and f"bytes together, over the {256 * MiB} byte limit" in err
    assert not ops.out.exists()


def test_the_total_cap_is_checked_before_any_file_is_read(ops: GitOps, monkeypatch: pytest.MonkeyPatch) -> None:
    from sealer._controller import source
    from sealer._controller.log import EventLog
    from sealer._controller.sync import Controller, Settings
    from sealer._controller.targets import DirTarget

    for i in range(4):
        ops.write(f"deploy/prod/pad{i}.yaml", "#" * 10_000 + "\n")
    ops.commit("40 KB")
    read: list[str] = []
    real_read = source.BlobReader.read

    def recording(self: source.BlobReader, oid: str, *, limit: int, name: str) -> bytes:
        read.append(name)
        return real_read(self, oid, limit=limit, name=name)

    monkeypatch.setattr(source.BlobReader, "read", recording)
    settings = Settings(
        repo=str(ops.root),
        branch="main",
        envs=("prod",),
        target=DirTarget(f"dir:{ops.out}", ops.out),
        state_dir=ops.state,
        identity_files=(str(ops.keys["prod"]),),
        max_total_bytes=30_000,
    )
    ctl = Controller(settings, log=EventLog(open(os.devnull, "w")))  # noqa: SIM115
    try:
        r = ctl.cycle()
    finally:
        ctl.close()
    assert not r.ok and r.reason == "unsafe_path" and "30000 byte limit" in (r.message or "")
    assert read == [".sealer.yaml", "keys/prod.yaml"]  # the commit's config only: no file of prod


def test_blobs_are_read_once_and_one_at_a_time(ops: GitOps) -> None:
    """48 MiB of files in one commit: the cycle's Python allocations stay under one copy of the
    commit. (Before: `cat-file --batch` output captured whole, then each blob sliced out of it,
    so at least two copies of every blob were alive at once.)"""
    from sealer._controller.log import EventLog
    from sealer._controller.sync import Controller, Settings
    from sealer._controller.targets import DirTarget

    total = 0
    for i in range(12):  # 4 MiB each, every one different; plain files, read and skipped
        data = f"# file {i}\n".encode() + b"#" * (4 * MiB - 16) + b"\n"
        ops.write(f"deploy/prod/pad{i:02d}.yaml", data)
        total += len(data)
    ops.commit("48 MiB of plain files")
    settings = Settings(
        repo=str(ops.root),
        branch="main",
        envs=("prod",),
        target=DirTarget(f"dir:{ops.out}", ops.out),
        state_dir=ops.state,
        identity_files=(str(ops.keys["prod"]),),
        workers=1,
    )
    ctl = Controller(settings, log=EventLog(open(os.devnull, "w")))  # noqa: SIM115
    try:
        ctl.mirror.fetch()  # the fetch is git's work, in its own process; warm it outside the count
        tracemalloc.start()
        try:
            r = ctl.cycle()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        ctl.close()
    assert r.ok and r.changed and r.files == 1, r
    assert "13 files without sealed values skipped" in (r.message or "")
    assert peak < total / 2, f"{peak / MiB:.1f} MiB allocated at the peak for a {total / MiB:.0f} MiB commit"


def test_worker_pool_renders_every_file_in_order(ops: GitOps, tmp_path: Path) -> None:
    """The pool takes its jobs as workers are ready; the output is the same as without workers."""
    ops.seal_many(70)
    ops.commit("70 sealed files")
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out-{workers}"
        r = subprocess.run(
            ops.controller_args(
                "--once", "--workers", workers, "--state-dir", str(tmp_path / f"state-{workers}"), target=f"dir:{out}"
            ),
            capture_output=True,
            text=True,
            env=ops.env(),
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        outs[workers] = {k: v for k, v in snapshot(out).items() if k != ".sealer-output"}
    assert len(outs["2"]) == 71 and outs["1"] == outs["2"]
