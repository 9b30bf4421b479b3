"""The CLI end to end, as people use it: real processes, real files, real keys, real age-keygen.

Every bad input must give one line on stderr that names the file, a non-zero exit, no traceback,
and leave every file exactly as it was.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from conftest import SECRET, Repo, assert_clean_failure, require_tool

# --- set-up commands -------------------------------------------------------------------------------


def test_init_writes_config_and_registry(repo: Repo) -> None:
    cfg = (repo.root / ".sealer.yaml").read_text()
    assert "deploy/prod/**" in cfg
    assert (repo.root / "keys" / "prod.yaml").is_file()
    r = repo.run("init", "--env", "prod")
    assert_clean_failure(r, ".sealer.yaml", code=1)  # a refusal, not a usage error


def test_keys_generate_mode_registry_and_refusal_inside_repo(repo: Repo) -> None:
    key = repo.keys["prod"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    rows = json.loads(repo.ok("keys", "list", "--output", "json").stdout)
    prod = [r for r in rows if r["env"] == "prod"]
    assert len(prod) == 1 and prod[0]["state"] == "active" and len(prod[0]["kid"]) == 16
    assert prod[0]["recipient"] in key.read_text()
    before = repo.snapshot()
    r = repo.run("keys", "generate", "dev", "--out", str(repo.root / "dev.key"))
    assert_clean_failure(r, "inside the repository", code=1)
    assert repo.snapshot() == before
    repo.ok("keys", "generate", "dev", "--out", str(repo.root / "dev.key"), "--force")
    assert (repo.root / "dev.key").exists()


def test_keys_generate_default_location_is_config_dir(repo: Repo) -> None:
    out = json.loads(repo.ok("keys", "generate", "dev", "--output", "json").stdout)
    path = Path(out["identity_file"])
    assert path.parent == repo.home / "identities"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_age_keygen_identity_unseals(repo: Repo, tmp_path: Path) -> None:
    """A key from the real age-keygen, registered by its public half only, opens what sealer sealed."""
    keygen = require_tool("age-keygen")
    key = tmp_path / "age.txt"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run([keygen, "-y", str(key)], check=True, capture_output=True, text=True).stdout.strip()
    repo.ok("keys", "add", "dev", recipient)
    repo.write("deploy/dev/db.yaml", SECRET)
    repo.ok("seal", "deploy/dev/db.yaml")
    out = repo.ok("unseal", "deploy/dev/db.yaml", "--format", "json", "-i", str(key)).stdout
    content = json.loads(out)[0]["content"]
    assert content["stringData"]["password"] == "pw-CANARY-7f3a9"
    assert content["data"]["tls.crt"] == "aGVsbG8gd29ybGQ="


# --- the daily loop --------------------------------------------------------------------------------


def test_seal_set_unseal_exec(repo: Repo, tmp_path: Path) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    sealed = f.read_text()
    assert "CANARY" not in sealed and "ENC[sealer.v1," in sealed
    assert sealed.startswith("# prod database\napiVersion: v1\n")
    # Idempotent: no byte changes, file not even rewritten.
    mtime = f.stat().st_mtime_ns
    repo.ok("seal", "deploy/prod/db.yaml")
    assert f.read_text() == sealed and f.stat().st_mtime_ns == mtime
    # set needs no private key: no identity anywhere, empty config dir.
    repo.ok("set", "deploy/prod/db.yaml", "stringData.password", stdin="new-CANARY-2\n")
    after = f.read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(sealed.splitlines(), after, strict=True)) if a != b]
    assert len(changed) == 1 and after[changed[0]].startswith("  password: ")
    # unseal to k8s
    out = repo.ok("unseal", "deploy/prod", "--format", "k8s", "-i", str(repo.keys["prod"])).stdout
    assert "password: new-CANARY-2" in out and "sealer:" not in out
    # exec: the child sees the value in its environment; nothing written
    code = "import os,sys; sys.stdout.write(os.environ['password'] + '|' + str('SEALER_IDENTITY_FILE' in os.environ))"
    r = repo.ok(
        "exec",
        "deploy/prod/db.yaml",
        "--",
        sys.executable,
        "-c",
        code,
        env={"SEALER_IDENTITY_FILE": str(repo.keys["prod"])},
    )
    assert r.stdout == "new-CANARY-2|False"


def test_set_from_file_into_data_keeps_bytes(repo: Repo, tmp_path: Path) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    blob = tmp_path / "cert.bin"
    blob.write_bytes(bytes(range(256)))
    repo.ok("set", "deploy/prod/db.yaml", 'data["tls.key"]', "--from-file", str(blob))
    out = repo.ok("unseal", "deploy/prod/db.yaml", "--format", "json", "-i", str(repo.keys["prod"])).stdout
    import base64

    assert base64.b64decode(json.loads(out)[0]["content"]["data"]["tls.key"]) == bytes(range(256))


def test_seal_stdin_stdout(repo: Repo) -> None:
    r = repo.ok("seal", "-", "--env", "prod", stdin=SECRET)
    assert "ENC[sealer.v1," in r.stdout and "CANARY" not in r.stdout
    r = repo.run("seal", "-", stdin=SECRET)
    assert_clean_failure(r, "--env", code=2)


def test_seal_output_json(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    rows = json.loads(repo.ok("seal", "deploy/prod/db.yaml", "--output", "json").stdout)
    assert rows[0]["sealed"] == 3 and rows[0]["env"] == "prod"


# --- bad input: one line, names the file, non-zero, nothing written --------------------------------


def sealed_prod(repo: Repo) -> Path:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    return f


def test_missing_file(repo: Repo) -> None:
    assert_clean_failure(repo.run("seal", "deploy/prod/nope.yaml"), "deploy/prod/nope.yaml", "no such file")
    assert_clean_failure(repo.run("unseal", "deploy/prod/nope.yaml", "-i", str(repo.keys["prod"])), "nope.yaml")


def test_unreadable_file(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", "[not: closed")
    before = repo.snapshot()
    # Root reads anything, so "unreadable" here is a directory where a file is expected and bad UTF-8.
    (repo.root / "deploy/prod/dir.yaml").mkdir()
    assert_clean_failure(repo.run("seal", "deploy/prod/dir.yaml"), "dir.yaml")
    f.write_bytes(b"password: \xff\xfe\n")
    assert_clean_failure(repo.run("seal", "deploy/prod/db.yaml"), "db.yaml", "UTF-8")
    del before


def test_malformed_yaml(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", "a: 1\nb: [unclosed\nc: 3\n")
    before = f.read_bytes()
    assert_clean_failure(repo.run("seal", "deploy/prod/db.yaml"), "deploy/prod/db.yaml", "malformed YAML", "line")
    assert f.read_bytes() == before


def test_file_sealed_for_other_environment(repo: Repo) -> None:
    f = sealed_prod(repo)
    moved = repo.write("deploy/staging/db.yaml", f.read_text())
    before = moved.read_bytes()
    assert_clean_failure(repo.run("seal", "deploy/staging/db.yaml"), "deploy/staging/db.yaml", "'prod'")
    assert moved.read_bytes() == before


def test_env_flag_against_path_rule(repo: Repo) -> None:
    f = repo.write("deploy/prod/db.yaml", SECRET)
    assert_clean_failure(
        repo.run("seal", "deploy/prod/db.yaml", "--env", "staging"),
        "deploy/prod/db.yaml",
        "'prod'",
        "'staging'",
    )
    assert f.read_text() == SECRET


def test_no_identity_and_wrong_identity(repo: Repo) -> None:
    sealed_prod(repo)
    r = repo.run("unseal", "deploy/prod/db.yaml")
    assert_clean_failure(r, "no identity found")
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["staging"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "none of the identities given is for it")


def test_tampered_token(repo: Repo) -> None:
    f = sealed_prod(repo)
    text = f.read_text()
    i = text.index("password: ") + len("password: ENC[sealer.v1,") + 16 + 1 + 40
    tampered = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
    f.write_text(tampered)
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "stringData.password")
    assert r.stdout == ""


def test_value_moved_to_other_key_and_other_secret(repo: Repo) -> None:
    f = sealed_prod(repo)
    text = f.read_text()
    lines = text.splitlines(keepends=True)
    pw = next(i for i, line in enumerate(lines) if line.startswith("  password:"))
    user = next(i for i, line in enumerate(lines) if line.startswith("  username:"))
    swapped = list(lines)
    swapped[pw] = "  password:" + lines[user].split(":", 1)[1]
    f.write_text("".join(swapped))
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"]))
    assert_clean_failure(r, "stringData.password", "path")
    f.write_text(text.replace("name: db", "name: db-copy"))
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"]))
    assert_clean_failure(r, "name")
    f.write_text(text.replace("namespace: shop", "namespace: other"))
    assert_clean_failure(repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"])), "namespace")


def test_unknown_token_version(repo: Repo) -> None:
    f = sealed_prod(repo)
    f.write_text(f.read_text().replace("ENC[sealer.v1,", "ENC[sealer.v7,", 1))
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "sealer.v7")


def test_world_readable_identity_refused(repo: Repo) -> None:
    sealed_prod(repo)
    key = repo.keys["prod"]
    key.chmod(0o644)
    r = repo.run("unseal", "deploy/prod/db.yaml", "-i", str(key))
    assert_clean_failure(r, str(key), "chmod 600")


def test_usage_errors_exit_2(repo: Repo) -> None:
    r = repo.run("unseal")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = repo.run("set", "deploy/prod/db.yaml", "stringData..x", stdin="v")
    assert_clean_failure(r, "stringData..x")


def test_init_creates_missing_directory(tmp_path: Path) -> None:
    r = Repo(tmp_path, root=tmp_path / "new" / "repo")
    r.ok("init", "--dir", str(r.root), cwd=tmp_path)
    assert (r.root / ".sealer.yaml").is_file()


def test_file_outside_repo_needs_env(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(SECRET)
    assert_clean_failure(repo.run("seal", str(outside)), "outside the sealer repository", code=2)
    r = repo.ok("seal", str(outside), "--env", "prod", "-o", "-")
    assert "ENC[sealer.v1," in r.stdout and "CANARY" not in r.stdout
    assert outside.read_text() == SECRET


def test_unseal_directory_filters_by_env_and_skips_plain_files(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/staging/db.yaml", SECRET.replace("CANARY", "STAGING"))
    repo.write("deploy/prod/deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")
    repo.ok("seal", "deploy/prod/db.yaml", "deploy/staging/db.yaml")
    r = repo.ok("unseal", "deploy", "--env", "prod", "--format", "json", "-i", str(repo.keys["prod"]))
    files = [item["file"] for item in json.loads(r.stdout)]
    assert files == ["deploy/prod/db.yaml"]
    assert "STAGING" not in r.stdout  # only prod's files are read: the repository says which they are


def test_cli_writes_a_verifiable_audit_log_without_values(repo: Repo) -> None:
    log = repo.home / "audit.log"
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml")
    repo.ok("set", "deploy/prod/db.yaml", "stringData.password", stdin="new-CANARY-3\n")
    repo.ok("--actor", "ci@deploy", "unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["prod"]))
    repo.run("unseal", "deploy/prod/db.yaml", "-i", str(repo.keys["staging"]))  # fails: wrong key
    repo.ok("keys", "rotate", "prod", "--out", str(repo.home.parent / "prod-2.txt"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = [(e["event"], e["result"]) for e in lines]
    assert ("seal", "ok") in events and ("set", "ok") in events and ("rotate", "ok") in events
    assert ("unseal", "ok") in events and ("unseal", "fail") in events
    unseal = next(e for e in lines if e["event"] == "unseal" and e["result"] == "ok")
    assert unseal["actor"] == "ci@deploy" and unseal["file"] == "deploy/prod/db.yaml" and len(unseal["kids"]) == 1
    assert "CANARY" not in log.read_text()
    assert repo.run("audit", "verify", str(log)).returncode == 0
    log.write_text(log.read_text().replace('"event":"set"', '"event":"sat"'))
    assert repo.run("audit", "verify", str(log)).returncode == 1
