"""Paths and files (issue 14, item 9), through the real CLI and the real controller.

- `seal -o OUT` writes a file sealed as it will be at OUT: refused when OUT's path rule names
  another environment; signed for OUT's path; by OUT's value rule.
- A symbolic link under an environment's paths, to a file out of the repository or to one inside
  it, or in place of the environment's directory itself: refused (exit 1, one line naming it) by
  check, status, unseal DIR and FILE (with or without --no-rules), exec, reseal (all files, or the
  link named) and the controller; never followed, skipped or replaced.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Repo, assert_clean_failure
from test_controller import CANARY, GitOps, secret

PLAIN = secret("db", password="pw-CANARY-o1")


# --- seal -o -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["prod file", "file outside the environments, --env prod", "stdin, --env prod"])
def test_seal_o_into_another_environments_path_is_refused(repo: Repo, source: str) -> None:
    for d in ("deploy/prod", "deploy/staging"):
        (repo.root / d).mkdir(parents=True, exist_ok=True)
    if source == "prod file":
        args, stdin = ["seal", "deploy/prod/new.yaml"], None
        repo.write("deploy/prod/new.yaml", PLAIN)
    elif source.startswith("file outside"):
        args, stdin = ["seal", "plain/new.yaml", "--env", "prod"], None
        repo.write("plain/new.yaml", PLAIN)
    else:
        args, stdin = ["seal", "-", "--env", "prod"], PLAIN
    before = repo.snapshot()
    r = repo.run(*args, "-o", "deploy/staging/x.yaml", stdin=stdin)
    assert_clean_failure(r, "deploy/staging/x.yaml", "'staging'", "'prod'", "-o")
    assert repo.snapshot() == before, "a refused seal -o wrote something"

    # Into prod's own paths, or out of the repository, it goes ahead, and check accepts the result.
    repo.ok(*args, "-o", "deploy/prod/x.yaml", stdin=stdin)
    assert "ENC[sealer.v1," in repo.read("deploy/prod/x.yaml") and "CANARY" not in repo.read("deploy/prod/x.yaml")
    repo.ok(*args, "-o", str(repo.tmp / "elsewhere.yaml"), stdin=stdin)
    (repo.root / "deploy/prod/new.yaml").unlink(missing_ok=True)  # the plaintext source, not a sealed file
    repo.ok("check")


def test_seal_o_signs_for_and_applies_the_value_rule_of_the_output_path(repo: Repo) -> None:
    signer = repo.tmp / "keys" / "alice.key"
    repo.ok("signers", "generate", "alice", "--env", "prod", "--out", str(signer))
    repo.write("deploy/prod/src.yaml", PLAIN)
    repo.ok("seal", "deploy/prod/src.yaml", "-o", "deploy/prod/signed.yaml", "--sign-with", str(signer))
    r = repo.ok("unseal", "deploy/prod/signed.yaml", "--format", "json", "-i", str(repo.keys["prod"]))
    assert "pw-CANARY-o1" in r.stdout  # the signature names deploy/prod/signed.yaml, where the file is

    with (repo.root / ".sealer.yaml").open("a") as f:
        f.write('rules:\n  - files: "deploy/prod/values.yaml"\n    encrypted_regex: "password"\n')
    repo.write("plain/values.yaml", "database:\n  host: db.internal\n  password: hunter2-CANARY\n")
    repo.ok("seal", "plain/values.yaml", "--env", "prod", "-o", "deploy/prod/values.yaml")
    out = repo.read("deploy/prod/values.yaml")
    assert "host: db.internal" in out and "hunter2" not in out, out  # deploy/prod/values.yaml's rule


# --- symbolic links ------------------------------------------------------------------------------


@pytest.fixture
def ops(tmp_path: Path) -> GitOps:
    return GitOps(tmp_path)


def refused(r: object, name: str) -> None:
    assert_clean_failure(r, name, "symbolic link")  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["out of the repository", "inside deploy/prod"])
def test_file_symlink_under_an_environment_is_refused_by_every_door(ops: GitOps, where: str) -> None:
    db = ops.root / "deploy/prod/db.yaml"
    link = ops.root / "deploy/prod/link.yaml"
    if where == "out of the repository":
        outside = ops.tmp / "outside" / "x.yaml"
        outside.parent.mkdir()
        shutil.copy(db, outside)  # a prod-sealed file, out of the repository
        link.symlink_to(outside)
    else:
        link.symlink_to("db.yaml")
    target_bytes = link.read_bytes()
    ops.commit("a link under deploy/prod")
    key = str(ops.keys["prod"])
    name = "deploy/prod/link.yaml"

    r = ops.run("check")
    assert r.returncode == 1 and name in r.stdout + r.stderr and "symbolic link" in r.stdout + r.stderr, r
    refused(ops.run("status"), name)
    for d in ("deploy/prod", "deploy", "."):
        refused(ops.run("unseal", d, "--format", "yaml", "-i", key), name)
    refused(ops.run("unseal", name, "--format", "yaml", "-i", key), name)
    refused(ops.run("unseal", name, "--format", "yaml", "--no-rules", "-i", key), name)
    refused(ops.run("exec", name, "-i", key, "--", "true"), name)

    new_key = ops.tmp / "keys" / "prod-2.txt"
    ops.ok("keys", "rotate", "prod", "--out", str(new_key))
    before = ops.snapshot()
    refused(ops.run("reseal", "-i", key), name)
    refused(ops.run("reseal", name, "-i", key), name)
    assert link.is_symlink(), "reseal replaced the link with a regular file"
    assert link.read_bytes() == target_bytes and ops.snapshot() == before

    r = ops.once()
    assert r.returncode == 1 and "reason=unsafe_path" in r.stderr and f"file={name}" in r.stderr, r.stderr
    assert not ops.out.exists()
    assert CANARY not in r.stdout + r.stderr


@pytest.mark.parametrize("where", ["out of the repository", "inside the repository"])
def test_environment_directory_that_is_a_symlink_is_refused_not_skipped(ops: GitOps, where: str) -> None:
    """deploy/prod itself a link: check used to pass it as "0 files, no problems"."""
    real = ops.tmp / "outside-prod" if where == "out of the repository" else ops.root / "shared-prod"
    (ops.root / "deploy/prod").rename(real)
    (ops.root / "deploy/prod").symlink_to(real if where == "out of the repository" else "../shared-prod")
    ops.commit("deploy/prod is a link")
    key = str(ops.keys["prod"])
    name = "deploy/prod"

    r = ops.run("check")
    assert r.returncode == 1 and "symbolic link" in r.stdout + r.stderr, ("check passed a linked deploy/prod", r)
    refused(ops.run("status"), name)
    refused(ops.run("unseal", "deploy", "--format", "yaml", "-i", key), name)
    refused(ops.run("reseal", "--dry-run"), name)
    r = ops.once()
    assert r.returncode == 1 and "reason=unsafe_path" in r.stderr, r.stderr
    assert CANARY not in r.stdout + r.stderr
