"""`sealer scan` and the pre-commit hook, with real keys, real files and real git repositories.

A finding is one line `FILE:LINE: what` and never the secret; binary, non-UTF-8 and huge files are
searched for private keys only and say so; `--staged` reads the index, not the working tree; the
installed hook blocks a real `git commit` and lets a sealed file through.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import SEALER, SECRET, Repo, assert_clean_failure
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sealer._scan import CHUNK, MAX_TEXT_BYTES


@pytest.fixture
def repo(git_repo: Repo) -> Repo:
    return git_repo


def findings(repo: Repo, *args: str) -> dict[str, object]:
    r = repo.run("scan", *args, "--output", "json")
    data = json.loads(r.stdout)
    assert r.returncode == (1 if data["findings"] else 0), r.stderr
    return dict(data)


def kinds(data: dict[str, object]) -> list[tuple[str, int | None, str]]:
    return [(f["file"], f["line"], f["kind"]) for f in data["findings"]]


def identity_line(key_file: Path) -> str:
    return next(line for line in key_file.read_text().splitlines() if not line.startswith("#"))


# --- private keys ----------------------------------------------------------------------------------


def _pem(private: object, fmt: serialization.PrivateFormat, password: bytes | None = None) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return private.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()


def test_private_keys_of_every_format(repo: Repo, tmp_path: Path) -> None:
    age = identity_line(repo.keys["prod"])
    pq_file = tmp_path / "pq.txt"
    repo.ok(
        "keys", "generate", "staging", "--add", "--kind", "mlkem768x25519", "--allow-mixed-kinds", "--out", str(pq_file)
    )
    pq = identity_line(pq_file)
    assert pq.startswith("AGE-SECRET-KEY-PQ-1")
    signer = tmp_path / "alice.txt"
    repo.ok("signers", "generate", "alice", "--out", str(signer))
    rsa_pem = _pem(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.PrivateFormat.TraditionalOpenSSL
    )
    ec_pkcs8 = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    enc_pkcs8 = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8, b"pw")
    openssh = _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    repo.write("notes/age.txt", f"intro\n\n# created: today\n{age}\n")
    repo.write("notes/pq.txt", pq + "\n")
    repo.write("notes/signer.txt", signer.read_text())
    repo.write("app/rsa.pem", rsa_pem)
    repo.write("app/config.yaml", "tls:\n  key: |\n" + "".join(f"    {line}\n" for line in ec_pkcs8.splitlines()))
    repo.write("app/enc.json", json.dumps({"a": 1, "key": enc_pkcs8}) + "\n")
    repo.write("app/id_ed25519", openssh)
    data = findings(repo, "notes", "app")
    assert sorted(kinds(data)) == [
        ("app/config.yaml", 3, "pem-private-key"),
        ("app/enc.json", 1, "pem-private-key"),
        ("app/id_ed25519", 1, "openssh-private-key"),
        ("app/rsa.pem", 1, "pem-private-key"),
        ("notes/age.txt", 4, "age-identity"),
        ("notes/pq.txt", 1, "age-identity"),
        ("notes/signer.txt", 4, "signer-key"),
    ]
    r = repo.run("scan", "notes", "app")
    assert "notes/age.txt:4: an age private key (AGE-SECRET-KEY-1…): never commit a private key" in r.stdout
    assert "post-quantum" in r.stdout
    for secret in (age, pq, identity_line(signer), rsa_pem.splitlines()[1], openssh.splitlines()[1]):
        assert secret not in r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("sealer: error: scan found 7 problem(s) in 7 file(s)")


def test_mentions_and_public_material_are_not_findings(repo: Repo) -> None:
    """Code that names the formats, placeholders, and sealer's own public files are clean."""
    repo.write(
        "src/keys.py",
        'OPENSSH = "-----BEGIN OPENSSH PRIVATE KEY-----"\n'
        'PEM = "-----BEGIN RSA PRIVATE KEY-----"\n'
        'AGE = "AGE-SECRET-KEY-1…"  # an identity starts like this\n',
    )
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(_allowed_signer(repo)))
    repo.write(
        "deploy/prod/flow.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: f\nstringData: {password: x}\n"
    )
    repo.ok("seal", "deploy/prod/flow.yaml")
    assert '"ENC[sealer.v1,' in (repo.root / "deploy/prod/flow.yaml").read_text()
    data = findings(repo, "--all")
    assert data["findings"] == [], data


def _allowed_signer(repo: Repo) -> Path:
    key = repo.home.parent / "signer.txt"
    if not key.exists():
        repo.ok("signers", "generate", "alice", "--env", "prod", "--out", str(key))
    return key


def test_plaintext_secrets_and_unsealed_values(repo: Repo) -> None:
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.write("deploy/prod/broken.yaml", "a: [unclosed\n")
    repo.write("app/settings.yaml", 'database:\n  password: "s3cr3t-CANARY-value"\n')
    repo.write("app/.env", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")
    repo.write("app/ok.yaml", "password: hunter2-CANARY  # pragma: allowlist secret\nreplicas: 3\n")
    data = findings(repo, "--all")
    assert kinds(data) == [
        ("app/.env", 1, "plaintext-secret"),
        ("app/settings.yaml", 2, "plaintext-secret"),
        ("deploy/prod/broken.yaml", None, "malformed"),
        ("deploy/prod/db.yaml", 9, "plaintext"),
        ("deploy/prod/db.yaml", 10, "plaintext"),
        ("deploy/prod/db.yaml", 12, "plaintext"),
    ]
    r = repo.run("scan", "--all")
    assert "deploy/prod/db.yaml:10: stringData.password: not sealed" in r.stdout
    assert "app/.env:1: possible plaintext secret (AWS Access Key)" in r.stdout
    assert "CANARY" not in r.stdout + r.stderr and "AKIAIOSFODNN7EXAMPLE" not in r.stdout + r.stderr


def test_exclusions_from_config(repo: Repo) -> None:
    repo.write("tests/fixtures/key.txt", identity_line(repo.keys["prod"]) + "\n")
    assert repo.run("scan", "--all").returncode == 1
    cfg = repo.root / ".sealer.yaml"
    cfg.write_text(cfg.read_text() + "scan:\n  exclude: ['tests/fixtures/**']\n")
    assert findings(repo, "--all")["findings"] == []


# --- binary, non-UTF-8 and huge files --------------------------------------------------------------


def test_binary_files(repo: Repo) -> None:
    age = identity_line(repo.keys["prod"])
    (repo.root / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (repo.root / "keyring.bin").write_bytes(b"\x00\x01\x02" * 100 + b"\n" + age.encode() + b"\n\xff\x00")
    data = findings(repo, "blob.bin", "keyring.bin")
    assert kinds(data) == [("keyring.bin", 2, "age-identity")]
    assert {(k["file"], k["reason"]) for k in data["keys_only"]} == {
        ("blob.bin", "binary file: searched for private keys only"),
        ("keyring.bin", "binary file: searched for private keys only"),
    }
    r = repo.run("scan", "blob.bin")
    assert r.returncode == 0 and "sealer: note: blob.bin: binary file: searched for private keys only" in r.stderr


def test_non_utf8_files(repo: Repo) -> None:
    age = identity_line(repo.keys["prod"])
    (repo.root / "latin1.conf").write_bytes(b"caf\xe9 = 1\npassword = hunter2\n")
    (repo.root / "latin1-key.conf").write_bytes(b"caf\xe9\n" + age.encode() + b"\n")
    data = findings(repo, "latin1.conf", "latin1-key.conf")
    assert kinds(data) == [("latin1-key.conf", 2, "age-identity")]
    assert [k["reason"] for k in data["keys_only"]] == ["not UTF-8 text: searched for private keys only"] * 2
    # Under an environment's path too: reported, not a crash.
    (repo.root / "deploy/prod").mkdir(parents=True)
    (repo.root / "deploy/prod/bad.yaml").write_bytes(b"password: \xff\xfe\n")
    r = repo.run("scan", "deploy")
    assert r.returncode == 0 and "deploy/prod/bad.yaml: not UTF-8 text" in r.stderr


def test_huge_files_are_searched_for_keys_in_chunks(repo: Repo) -> None:
    age = identity_line(repo.keys["prod"]).encode()
    line = b"x" * 99 + b"\n"
    body = bytearray(line * ((CHUNK - 20) // len(line)))
    first_line = body.count(b"\n") + 1
    body += b"k=" + age + b"\n"  # straddles the first chunk boundary
    body += line * ((MAX_TEXT_BYTES + CHUNK) // len(line))
    last_line = body.count(b"\n") + 1
    body += age + b"\n"
    assert len(body) > MAX_TEXT_BYTES
    (repo.root / "dump.sql").write_bytes(bytes(body))
    data = findings(repo, "dump.sql")
    assert kinds(data) == [("dump.sql", first_line, "age-identity"), ("dump.sql", last_line, "age-identity")]
    assert data["keys_only"] == [{"file": "dump.sql", "reason": "larger than 8 MiB: searched for private keys only"}]


def test_symlinks_and_missing_paths(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside-key.txt"
    outside.write_text(identity_line(repo.keys["prod"]) + "\n")
    (repo.root / "link.txt").symlink_to(outside)
    r = repo.run("scan", "link.txt")
    assert r.returncode == 0 and "link.txt: a symbolic link: not followed" in r.stderr
    assert_clean_failure(repo.run("scan", "nope.txt"), "nope.txt", "no such file", code=2)
    assert_clean_failure(repo.run("scan", "--staged", "x"), "one of --staged, --all or PATH", code=2)


# --- staged content ---------------------------------------------------------------------------------


def test_staged_reads_the_index_not_the_working_tree(repo: Repo) -> None:
    age = identity_line(repo.keys["prod"])
    f = repo.write("notes.txt", f"line\n{age}\n")
    repo.git("add", "notes.txt")
    f.write_text("line\nclean now, but not staged\n")
    assert kinds(findings(repo, "--staged")) == [("notes.txt", 2, "age-identity")]
    assert findings(repo, "notes.txt")["findings"] == []
    repo.git("add", "notes.txt")
    f.write_text(f"{age}\n")
    assert findings(repo, "--staged")["findings"] == []
    # Unsealed values under an environment path, staged.
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.git("add", "deploy/prod/db.yaml")
    assert [k[2] for k in kinds(findings(repo, "--staged"))] == ["plaintext"] * 3
    # Nothing staged: nothing to scan, and no temporary files left in .git.
    repo.git("reset", "-q")
    assert findings(repo, "--staged")["files"] == 0
    assert not list((repo.root / ".git").glob("sealer-scan-*"))


def test_staged_binary_symlink_and_outside_git(repo: Repo, tmp_path: Path) -> None:
    (repo.root / "img.bin").write_bytes(b"\x00" * 10)
    (repo.root / "link").symlink_to("img.bin")
    repo.git("add", "img.bin", "link")
    data = findings(repo, "--staged")
    assert data["keys_only"] == [{"file": "img.bin", "reason": "binary file: searched for private keys only"}]
    assert data["skipped"] == [{"file": "link", "reason": "not a regular file (a symbolic link or a submodule)"}]
    plain = tmp_path / "plain"
    plain.mkdir()
    r = repo.run("scan", "--staged", cwd=plain)
    assert_clean_failure(r, "not inside a git repository", code=2)


# --- the hook --------------------------------------------------------------------------------------

MINIMAL_PATH = {"PATH": "/usr/bin:/bin"}  # git's hooks must not rely on the virtualenv being on PATH


def test_hook_blocks_keys_and_plaintext_and_passes_sealed_files(repo: Repo) -> None:
    r = repo.ok("hook", "install")
    hook = repo.root / ".git/hooks/pre-commit"
    assert f"installed {hook}" in r.stderr
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n") and f"exec {SEALER} scan --staged\n" in text
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    head = repo.git("rev-parse", "HEAD").stdout

    # An age private key.
    repo.write("ops/prod.key", repo.keys["prod"].read_text())
    repo.git("add", "ops/prod.key")
    r = repo.git("commit", "-qm", "oops", env=MINIMAL_PATH, check=False)
    assert r.returncode != 0
    assert "ops/prod.key:4: an age private key" in r.stdout + r.stderr
    assert repo.git("rev-parse", "HEAD").stdout == head
    repo.git("rm", "-q", "--cached", "ops/prod.key")
    (repo.root / "ops/prod.key").unlink()

    # A plaintext password under deploy/prod/.
    repo.write("deploy/prod/db.yaml", SECRET)
    repo.git("add", "deploy/prod/db.yaml")
    r = repo.git("commit", "-qm", "plain", env=MINIMAL_PATH, check=False)
    assert r.returncode != 0
    assert "deploy/prod/db.yaml:10: stringData.password: not sealed" in r.stdout + r.stderr
    assert "CANARY" not in r.stdout + r.stderr
    assert repo.git("rev-parse", "HEAD").stdout == head

    # Sealed: the commit goes through.
    repo.ok("seal", "deploy/prod/db.yaml")
    repo.git("add", "deploy/prod/db.yaml")
    repo.git("commit", "-qm", "sealed", env=MINIMAL_PATH)
    assert repo.git("rev-parse", "HEAD").stdout != head

    # `git commit -a` stages through a temporary index (GIT_INDEX_FILE): still checked.
    f = repo.root / "deploy/prod/db.yaml"
    f.write_text(f.read_text().replace("stringData:\n", "stringData:\n  api: plain-CANARY\n"))
    r = repo.git("commit", "-qam", "sneaky", env=MINIMAL_PATH, check=False)
    assert r.returncode != 0 and "stringData.api: not sealed" in r.stdout + r.stderr


def test_hook_install_respects_a_foreign_hook(repo: Repo) -> None:
    hook = repo.root / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho mine\n")
    r = repo.run("hook", "install")
    assert_clean_failure(r, str(hook), "sealer did not write", "--force", code=1)
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    assert "replaced the previous hook" in repo.ok("hook", "install", "--force").stderr
    assert "sealer scan --staged" in hook.read_text()
    assert "replaced" not in repo.ok("hook", "install").stderr  # our own hook: updated quietly
    outside = repo.home.parent / "nogit"
    outside.mkdir()
    assert_clean_failure(repo.run("hook", "install", cwd=outside), "not inside a git repository", code=2)


def test_pre_commit_framework_manifest() -> None:
    from ruamel.yaml import YAML

    hooks = YAML(typ="safe").load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    assert by_id["sealer-scan"]["entry"] == "sealer scan" and by_id["sealer-scan"]["language"] == "python"
    assert by_id["sealer-check"]["entry"] == "sealer check" and by_id["sealer-check"]["pass_filenames"] is False
