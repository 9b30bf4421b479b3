"""`sealer check`, the CI gate: exit codes, one line per problem naming the file (and the value's
path), `--output json`, and every problem it exists to catch. Real processes, real files, real keys."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SECRET, Repo, assert_clean_failure

from sealer._check import check
from sealer._config import load_config


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.create(tmp_path, "staging", "prod", keys=("staging", "prod"))


def problems(r: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    data = json.loads(r.stdout)
    assert data["ok"] is (r.returncode == 0)
    return list(data["problems"])


def test_clean_repository_passes(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/staging/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml", "deploy/staging/db.yaml")
    r = repo.ok("check")
    assert r.stdout == "" and "checked 2 file(s), 6 value(s): no problems" in r.stderr
    data = json.loads(repo.ok("check", "--output", "json").stdout)
    assert data == {"ok": True, "files": 2, "values": 6, "unsealed": None, "problems": [], "warnings": [], "notes": []}
    assert "checking" not in r.stderr  # no progress bar when stderr is not a terminal


def test_an_empty_repository_passes(repo: Repo) -> None:
    assert "checked 0 file(s)" in repo.ok("check").stderr


def test_plaintext_left_is_one_line_per_value(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    r = repo.run("check")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines == [
        f"deploy/prod/db.yaml: {p}: not sealed: a plaintext value under environment prod's paths (run: sealer seal)"
        for p in ("stringData.username", "stringData.password", 'data["tls.crt"]')
    ]
    assert r.stderr.strip() == "sealer: error: check found 3 problem(s) in 1 file(s)"
    assert "CANARY" not in r.stdout + r.stderr
    rows = problems(repo.run("check", "--output", "json"))
    assert [(p["code"], p["path"], p["line"]) for p in rows] == [
        ("plaintext", "stringData.username", 9),
        ("plaintext", "stringData.password", 10),
        ("plaintext", 'data["tls.crt"]', 12),
    ]


def test_partly_sealed_file(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    f.write_text(f.read_text().replace("stringData:\n", "stringData:\n  added: plain-CANARY\n"))
    rows = problems(repo.run("check", "--output", "json"))
    assert [(p["code"], p["path"]) for p in rows] == [("plaintext", "stringData.added")]


def test_unparseable_and_hidden_files(repo: Repo) -> None:
    repo.write("deploy/prod/bad.yaml", "a: [unclosed\n")
    repo.write("deploy/prod/.hidden.yaml", "password: CANARY\n")
    repo.write("deploy/prod/notes.txt", "not yaml, not checked\n")
    r = repo.run("check")
    assert r.returncode == 1
    assert "deploy/prod/bad.yaml: malformed YAML at line 2" in r.stdout
    assert "deploy/prod/.hidden.yaml: password: not sealed" in r.stdout
    assert "notes.txt" not in r.stdout


def test_env_differs_from_path_rule(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    repo.write("deploy/staging/db.yaml", f.read_text())
    rows = problems(repo.run("check", "--output", "json"))
    assert [(p["file"], p["code"]) for p in rows] == [("deploy/staging/db.yaml", "env-mismatch")]
    assert "sealed for environment 'prod', but its path rule gives 'staging'" in str(rows[0]["message"])


def test_moved_value_and_malformed_token(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    text = f.read_text()
    lines = text.splitlines(keepends=True)
    pw = next(i for i, line in enumerate(lines) if line.startswith("  password:"))
    user = next(i for i, line in enumerate(lines) if line.startswith("  username:"))
    lines[pw] = "  password:" + lines[user].split(":", 1)[1]
    lines[user] = "  username: ENC[sealer.v1,0000,broken]\n"
    f.write_text("".join(lines))
    rows = problems(repo.run("check", "--output", "json"))
    assert [(p["code"], p["path"]) for p in rows] == [
        ("token", "stringData.username"),
        ("moved", "stringData.password"),
    ]
    assert "path" in str(rows[1]["message"])


def test_stale_keys_after_rotation_then_reseal(repo: Repo, tmp_path: Path) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    old = json.loads(repo.ok("keys", "list", "--env", "prod", "--output", "json").stdout)[0]["kid"]
    repo.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod2.txt"))
    r = repo.run("check")
    assert r.returncode == 1
    assert f"deploy/prod/db.yaml: stringData.password: sealed to {old} (retiring)" in r.stdout
    repo.ok("reseal", "--env", "prod", "-i", str(repo.keys["prod"]))
    repo.ok("check")


def test_missing_recovery_key_and_unknown_kid(repo: Repo, tmp_path: Path) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    from sealer._keys import generate_identity

    recovery = generate_identity()
    repo.ok("keys", "add", "prod", recovery.recipient.encode(), "--recovery")
    rows = problems(repo.run("check", "--output", "json"))
    assert {p["code"] for p in rows} == {"missing-key"} and len(rows) == 3
    assert recovery.kid in str(rows[0]["message"])
    # A token naming a key no registry knows.
    text = f.read_text()
    kid = text.split("ENC[sealer.v1,", 1)[1][:16]
    f.write_text(text.replace(kid, "0123456789abcdef"))
    rows = problems(repo.run("check", "--output", "json"))
    assert any(p["code"] == "stale-key" and "not in the registry" in str(p["message"]) for p in rows)


def test_revoked_and_too_old(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    time.sleep(1.1)
    repo.ok("keys", "revoke-before", "prod", "now")
    rows = problems(repo.run("check", "--output", "json"))
    assert {p["code"] for p in rows} == {"revoked"} and len(rows) == 3
    # Age, through the library with a clock 100 days on.
    repo.write("deploy/staging/db.yaml", SECRET)
    repo.ok("seal", "deploy/staging/db.yaml")
    cfg_path = repo.root / ".sealer.yaml"
    cfg_path.write_text(
        cfg_path.read_text().replace(
            '      - "deploy/staging/**"\n', '      - "deploy/staging/**"\n    policy:\n      max_secret_age: 90d\n'
        )
    )
    report = check(load_config(repo.root), [repo.root / "deploy/staging"], now=time.time() + 100 * 86400)
    assert [p.code for p in report.problems] == ["too-old"] * 3
    assert "older than max_secret_age (90 days)" in report.problems[0].message
    assert check(load_config(repo.root), [repo.root / "deploy/staging"]).ok


def test_identity_proves_every_value_opens(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    r = repo.ok("check", "-i", str(repo.keys["prod"]))
    assert "3 unsealed: no problems" in r.stderr
    assert json.loads(repo.ok("check", "-i", str(repo.keys["prod"]), "--output", "json").stdout)["unsealed"] == 3
    # The wrong key: the file is named, and the failure is a problem line, not a crash.
    r = repo.run("check", "-i", str(repo.keys["staging"]))
    assert r.returncode == 1
    assert r.stdout.startswith("deploy/prod/db.yaml: sealed to key ")
    # A token whose blob is altered passes the header checks but does not open.
    text = f.read_text()
    i = text.index("password: ") + len("password: ENC[sealer.v1,") + 16 + 1 + 40
    f.write_text(text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :])
    assert repo.run("check").returncode == 0  # no key: nothing can tell
    r = repo.run("check", "-i", str(repo.keys["prod"]), "--output", "json")
    rows = problems(r)
    assert [p["code"] for p in rows] == ["unseal"] and "stringData.password" in str(rows[0]["message"])
    assert "CANARY" not in r.stdout + r.stderr


def test_explicit_paths(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/staging/db.yaml", SECRET)
    repo.ok("seal", "deploy/staging/db.yaml")
    repo.ok("check", "deploy/staging")
    repo.ok("check", "deploy/staging/db.yaml")
    assert repo.run("check", "deploy/prod").returncode == 1
    other = repo.write("elsewhere/x.yaml", "a: 1\n")
    rows = problems(repo.run("check", str(other), "--output", "json"))
    assert [(p["file"], p["code"]) for p in rows] == [("elsewhere/x.yaml", "no-env")]
    r = repo.run("check", "deploy/nope.yaml")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_key_shared_between_environments(repo: Repo) -> None:
    """A prod key registered in staging too: sealing refuses, check reports both registries."""
    prod = json.loads(repo.ok("keys", "list", "--env", "prod", "--output", "json").stdout)[0]["recipient"]
    repo.ok("keys", "add", "staging", prod)
    f = repo.write("deploy/prod/db.yaml", SECRET)
    r = repo.run("seal", "deploy/prod/db.yaml")
    assert_clean_failure(r, "deploy/prod/db.yaml", "refusing to seal for prod", "'staging'")
    assert f.read_text() == SECRET
    rows = problems(repo.run("check", "--output", "json"))
    shared = sorted(str(p["file"]) for p in rows if p["code"] == "shared-key")
    assert shared == ["keys/prod.yaml", "keys/staging.yaml"]


def test_registry_and_policy_problems(repo: Repo) -> None:
    (repo.root / "keys/staging.yaml").write_text("keys: 7\n")
    cfg = repo.root / ".sealer.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            '      - "deploy/prod/**"\n',
            '      - "deploy/prod/**"\n    policy:\n      key_rotation_period: 1s\n      require_signature: true\n',
        )
    )
    time.sleep(1.1)
    rows = problems(repo.run("check", "--output", "json"))
    codes = {(p["file"], p["code"]) for p in rows}
    assert codes == {
        ("keys/staging.yaml", "registry"),
        ("keys/prod.yaml", "key-overdue"),
        ("keys/prod.yaml", "no-signer"),
    }
    cfg.write_text(cfg.read_text().replace("require_signature: true", "require_signature: maybe"))
    assert_clean_failure(repo.run("check"), "require_signature must be true or false")


def test_environment_without_a_key(repo: Repo) -> None:
    cfg = repo.root / ".sealer.yaml"
    cfg.write_text(cfg.read_text().replace("environments:\n", 'environments:\n  dev:\n    paths: ["deploy/dev/**"]\n'))
    repo.ok("check")  # an environment with no files and no key yet is not a problem
    repo.write("deploy/dev/x.yaml", "a: 1\n")
    rows = problems(repo.run("check", "--output", "json"))
    assert {(p["file"], p["code"]) for p in rows} == {("keys/dev.yaml", "no-key"), ("deploy/dev/x.yaml", "plaintext")}


def test_check_imports_neither_gitpython_nor_pynacl(repo: Repo) -> None:
    """Only what the checks need: no gitpython, and no pynacl while nothing is signed."""
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    code = (
        "import sys; from sealer._cli import run; rc = run(['check']); "
        "print(rc, 'git' in sys.modules, 'nacl.signing' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo.root, capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["0", "False", "False"]
