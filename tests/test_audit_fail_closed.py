"""The audit log fails closed: no plaintext leaves `unseal` or `exec` without its audit line.

As Vault refuses a request that no audit device can record, an audit log that cannot be written
stops the release, unless SEALER_AUDIT=best-effort says to go on with a warning. SEALER_AUDIT_LOG=off
still turns the log off. Every case runs the real CLI (the `Repo` harness) with a log that really
cannot be written: a directory, a path under a regular file, and /dev/full (a full disk: the open
works, the write fails with ENOSPC).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure

PLAINTEXT = "pw-CANARY-7f3a9"


def unwritable(kind: str, tmp: Path) -> str:
    if kind == "directory":
        (tmp / "a-dir").mkdir()
        return str(tmp / "a-dir")
    if kind == "under-a-file":
        (tmp / "plain").write_text("x")
        return str(tmp / "plain" / "audit.log")
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    return "/dev/full"


@pytest.fixture
def sealed(repo: Repo) -> Repo:
    repo.seal("deploy/prod/db.yaml", SECRET)
    return repo


@pytest.mark.parametrize("kind", ["directory", "under-a-file", "disk-full"])
def test_unseal_and_exec_refuse_when_the_log_cannot_be_written(sealed: Repo, kind: str) -> None:
    log = unwritable(kind, sealed.tmp)
    key = str(sealed.keys["prod"])
    env = {"SEALER_AUDIT_LOG": log}

    r = sealed.run("unseal", "deploy/prod/db.yaml", "-i", key, env=env)
    line = assert_clean_failure(r, log, "audit log", "nothing was unsealed", "SEALER_AUDIT=best-effort")
    assert r.stdout == "" and PLAINTEXT not in line

    out = sealed.tmp / "plain.yaml"
    r = sealed.run("unseal", "deploy/prod/db.yaml", "-i", key, "--format", "dotenv", "-o", str(out), env=env)
    assert_clean_failure(r, "nothing was unsealed")
    assert not out.exists()

    # an export hands the values to other keys: the same release, the same refusal
    age = next(line.split()[-1] for line in sealed.read("keys/staging.yaml").splitlines() if "recipient:" in line)
    r = sealed.run("export", "sops", "deploy/prod/db.yaml", "--age", age, "-i", key, env=env)
    assert_clean_failure(r, "nothing was exported")
    assert r.stdout == ""

    marker = sealed.tmp / "ran"
    r = sealed.run("exec", "deploy/prod/db.yaml", "-i", key, "--", "/bin/sh", "-c", f"echo ran > {marker}", env=env)
    assert_clean_failure(r, log, "the command was not run", "SEALER_AUDIT=best-effort")
    assert not marker.exists()


def test_best_effort_goes_on_with_one_warning(sealed: Repo) -> None:
    log = unwritable("directory", sealed.tmp)
    env = {"SEALER_AUDIT_LOG": log, "SEALER_AUDIT": "best-effort"}
    r = sealed.ok("unseal", "deploy/prod/db.yaml", "-i", str(sealed.keys["prod"]), env=env)
    assert PLAINTEXT in r.stdout
    (warning,) = r.stderr.strip().splitlines()
    assert warning.startswith(f"warning: {log}: cannot open the audit log") and "SEALER_AUDIT=best-effort" in warning


def test_the_off_switch_still_turns_the_log_off(sealed: Repo) -> None:
    before = sorted(p.name for p in sealed.home.iterdir())
    r = sealed.ok("unseal", "deploy/prod/db.yaml", "-i", str(sealed.keys["prod"]), env={"SEALER_AUDIT_LOG": "off"})
    assert PLAINTEXT in r.stdout and r.stderr == ""
    assert sorted(p.name for p in sealed.home.iterdir()) == before  # no log appeared, no anchor moved


def test_an_unknown_policy_is_refused_not_guessed(sealed: Repo) -> None:
    r = sealed.run("unseal", "deploy/prod/db.yaml", "-i", str(sealed.keys["prod"]), env={"SEALER_AUDIT": "off"})
    assert_clean_failure(r, "SEALER_AUDIT='off'", "required", "best-effort", "SEALER_AUDIT_LOG=off", code=2)
    assert r.stdout == ""


def test_exec_writes_its_audit_line_before_the_command_runs(sealed: Repo) -> None:
    log = sealed.tmp / "audit.log"
    copy = sealed.tmp / "seen-by-child.log"
    sealed.ok(
        "exec",
        "deploy/prod/db.yaml",
        "-i",
        str(sealed.keys["prod"]),
        "--",
        "/bin/sh",
        "-c",
        f'cat "$SEALER_AUDIT_LOG" > {copy}',
        env={"SEALER_AUDIT_LOG": str(log)},
    )
    seen = [json.loads(line) for line in copy.read_text().splitlines()]
    assert seen[-1]["event"] == "unseal" and seen[-1]["file"] == "deploy/prod/db.yaml"
    assert seen[-1]["reason"] == "exec /bin/sh" and PLAINTEXT not in copy.read_text()


def test_commands_whose_work_git_shows_still_warn_only(repo: Repo) -> None:
    """seal, set and the key commands write ciphertext or public keys: their audit line follows the
    work, and an unwritable log does not undo it (git records the change)."""
    log = unwritable("directory", repo.tmp)
    repo.write("deploy/prod/db.yaml", SECRET)
    r = repo.ok("seal", "deploy/prod/db.yaml", env={"SEALER_AUDIT_LOG": log})
    assert "ENC[sealer.v1," in repo.read("deploy/prod/db.yaml")
    assert any(ln.startswith(f"warning: {log}: cannot open the audit log") for ln in r.stderr.splitlines())


def test_the_controller_refusing_off_names_the_variable_not_only_a_flag(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_")}
    env["SEALER_AUDIT_LOG"] = "off"
    args = ["controller", "--repo", str(tmp_path), "--env", "prod", "--target", f"dir:{tmp_path / 'out'}", "--once"]
    r = subprocess.run(
        [SEALER, *args, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    line = assert_clean_failure(r, "always keeps an audit log", "SEALER_AUDIT_LOG", "'off'", code=2)
    assert "give --audit-log a file" not in line
