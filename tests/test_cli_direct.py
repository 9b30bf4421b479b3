"""`sealer unseal` runs without click (sealer/_cli/direct.py). Its argv reader must never read
arguments differently from click: where it takes them, the parameters are exactly click's; anything
else goes to click. And a plain unseal must really not import click, or the point is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import SECRET, Repo
from hypothesis import given, settings
from hypothesis import strategies as st

from sealer._cli import direct
from sealer._cli.unseal import unseal as unseal_command

WORDS = [
    "--format", "--format=k8s", "--format=yaml", "--format=bogus", "--format=", "k8s", "json", "dotenv",
    "YAML", "-o", "-o-", "--out", "--out=x.txt", "-i", "-ikey.txt", "-i=key.txt", "--identity",
    "--identity=", "--env", "--env=prod", "prod", "--no-rules", "--no-rules=1", "--allow-env", "PATH",
    "-h", "--help", "--", "-", "-x", "--bogus", "-5", "--form", "file.yaml", "missing.yaml", "adir",
    "adir/", "", "-oadir", "--out=adir", "-iadir", "--envprod", "-format",
]  # fmt: skip


def click_params(args: list[str]) -> dict[str, Any] | None:
    """What click makes of `args` for `sealer unseal`, or None where it refuses or exits (help)."""
    try:
        return dict(unseal_command.make_context("unseal", list(args)).params)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("argv")
    (d / "file.yaml").write_text("a: 1\n")
    (d / "key.txt").write_text("k\n")
    (d / "adir").mkdir()
    return d


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=7))
def test_direct_reading_is_clicks_reading(workdir: Path, args: list[str]) -> None:
    old = os.getcwd()
    os.chdir(workdir)
    try:
        mine = direct.parse(args, direct.UNSEAL_OPTIONS, direct.PATHS)
        if mine is not None:
            assert mine == click_params(args), args
    finally:
        os.chdir(old)


@pytest.mark.parametrize(
    "args",
    [
        ["deploy/prod/db.yaml"],
        ["deploy/prod/db.yaml", "--format", "k8s", "-i", "key.txt"],
        ["--format=k8s", "-ikey.txt", "deploy/prod", "--env", "prod", "-o", "-"],
        ["--no-rules", "--allow-env", "PATH", "--allow-env", "HOME", "--", "-odd-name.yaml"],
        ["-", "--env", "prod"],
    ],
)
def test_the_forms_deploy_jobs_use_go_direct(workdir: Path, args: list[str]) -> None:
    """The direct path must take the everyday command lines (else it saves nothing), as click does."""
    old = os.getcwd()
    os.chdir(workdir)
    try:
        mine = direct.parse(args, direct.UNSEAL_OPTIONS, direct.PATHS)
        assert mine is not None
        assert mine == click_params(args)
    finally:
        os.chdir(old)


@pytest.mark.parametrize(
    "args",
    [[], ["--help"], ["f.yaml", "-h"], ["f.yaml", "--format", "bogus"], ["f.yaml", "-o", "adir"], ["f.yaml", "-i"]],
)
def test_what_click_must_answer_goes_to_click(workdir: Path, args: list[str]) -> None:
    old = os.getcwd()
    os.chdir(workdir)
    try:
        assert direct.parse(args, direct.UNSEAL_OPTIONS, direct.PATHS) is None
    finally:
        os.chdir(old)


def test_unseal_runs_without_importing_click(repo: Repo) -> None:
    key = repo.keys["prod"]
    repo.seal("deploy/prod/db.yaml", SECRET)
    code = "import sys; from sealer._cli import main; sys.argv = ['sealer', *sys.argv[1:]]; main()"
    argv = [sys.executable, "-X", "importtime", "-c", code, "unseal", "deploy/prod/db.yaml", "--format", "k8s"]
    p = subprocess.run([*argv, "-i", str(key)], cwd=repo.root, env=repo.env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-400:]
    assert "kind: Secret" in p.stdout
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "click" not in imported
    # and the same command through click (a global option first) gives the same output
    q = subprocess.run([*argv[:4], code, "--actor", "ci", *argv[5:], "-i", str(key)], cwd=repo.root, env=repo.env(),
                       capture_output=True, text=True)  # fmt: skip
    assert q.returncode == 0, q.stderr[-400:]
    assert "click" in {line.split("|")[-1].strip() for line in q.stderr.splitlines() if line.startswith("import time:")}
    assert q.stdout == p.stdout


def test_direct_failures_are_audited_and_one_line(repo: Repo) -> None:
    """A refused unseal on the direct path: one line, exit 1, and a `fail` line in the audit log."""
    repo.seal("deploy/prod/db.yaml", SECRET)
    repo.fail("unseal", "deploy/prod/db.yaml", "-i", str(repo.tmp / "does-not-exist.txt"))
    last = (repo.home / "audit.log").read_text().splitlines()[-1]
    assert '"unseal"' in last and '"fail"' in last
