"""`sealer import` / `sealer export` through the real CLI, with the peers' real sample files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SEALER = str(Path(sys.executable).parent / "sealer")
VECTOR_DIR = Path(__file__).resolve().parent / "vectors"  # public peer test data, see vectors/README.md
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\nstringData:\n  password: pw-CANARY-1\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path / "repo"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALER_", "SOPS_"))}
    env["SEALER_CONFIG_DIR"] = str(tmp_path / "home")
    key = tmp_path / "prod.txt"
    for args in (["init", "--env", "prod"], ["keys", "generate", "prod", "--out", str(key)]):
        subprocess.run([SEALER, *args], cwd=root, env=env, check=True, capture_output=True)
    (root / "deploy/prod").mkdir(parents=True)
    return root, key, env


def run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEALER, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_sops_sample_imports_and_round_trips(repo: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    root, key, env = repo
    keys = tmp_path / "sops-keys.txt"  # public test keys from tests/vectors/sops
    shutil.copy(VECTOR_DIR / "sops" / "keys.txt", keys)
    keys.chmod(0o600)
    r = run(
        root,
        {**env, "SOPS_AGE_KEY_FILE": str(keys)},
        "import",
        "sops",
        str(VECTOR_DIR / "sops/example.yaml"),
        "-o",
        "deploy/prod/example.yaml",
    )
    assert r.returncode == 0, r.stderr
    expected = json.loads((VECTOR_DIR / "sops/expected_plaintext.json").read_text())
    out = run(root, env, "unseal", "deploy/prod/example.yaml", "--format", "json", "-i", str(key))
    assert out.returncode == 0, out.stderr
    content = json.loads(out.stdout)[0]["content"]
    assert content == expected["example.yaml"]["plaintext"]
    # back to SOPS for the sample's recipient, then in again: same plaintext
    recipient = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"
    sops_file = tmp_path / "again.sops.yaml"
    r = run(
        root,
        env,
        "export",
        "sops",
        "deploy/prod/example.yaml",
        "--age",
        recipient,
        "-i",
        str(key),
        "-o",
        str(sops_file),
    )
    assert r.returncode == 0, r.stderr
    assert "sops:" in sops_file.read_text() and "ENC[AES256_GCM," in sops_file.read_text()
    r = run(root, {**env, "SOPS_AGE_KEY_FILE": str(keys)}, "import", "sops", str(sops_file), "--env", "prod")
    assert r.returncode == 0, r.stderr


def test_sops_bad_mac_is_one_line(repo: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    root, _key, env = repo
    keys = tmp_path / "sops-keys.txt"
    shutil.copy(VECTOR_DIR / "sops" / "keys.txt", keys)
    keys.chmod(0o600)
    text = (VECTOR_DIR / "sops/example.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("mac: ENC[AES256_GCM,data:", "mac: ENC[AES256_GCM,data:A", 1))
    r = run(root, {**env, "SOPS_AGE_KEY_FILE": str(keys)}, "import", "sops", str(bad), "--env", "prod")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("sealer: error: ") and "Traceback" not in r.stderr


def test_sealedsecret_export_import(repo: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    root, key, env = repo
    ss = VECTOR_DIR / "sealed-secrets"
    (root / "deploy/prod/db.yaml").write_text(SECRET)
    assert run(root, env, "seal", "deploy/prod/db.yaml").returncode == 0
    out = tmp_path / "db-sealedsecret.yaml"
    r = run(
        root,
        env,
        "export",
        "sealedsecret",
        "deploy/prod/db.yaml",
        "--cert",
        str(ss / "wingkwong-tls.crt.pem"),
        "-i",
        str(key),
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "kind: SealedSecret" in text and "CANARY" not in text
    r = run(
        root,
        env,
        "import",
        "sealedsecret",
        str(out),
        "--key",
        str(ss / "wingkwong-tls.key.pem"),
        "-o",
        "deploy/prod/db2.yaml",
    )
    assert r.returncode == 0, r.stderr
    assert "CANARY" not in (root / "deploy/prod/db2.yaml").read_text()
    r = run(root, env, "unseal", "deploy/prod/db2.yaml", "--format", "dotenv", "-i", str(key))
    assert r.stdout == "password=pw-CANARY-1\n"
    # moved to another name: refused, naming the label
    moved = tmp_path / "moved.yaml"
    moved.write_text(text.replace("name: db\n  namespace: shop", "name: other\n  namespace: shop", 1))
    r = run(
        root, env, "import", "sealedsecret", str(moved), "--key", str(ss / "wingkwong-tls.key.pem"), "--env", "prod"
    )
    assert r.returncode == 1 and "CANARY" not in r.stderr and "Traceback" not in r.stderr


def test_passphrase_protected_identity_made_by_real_age(
    repo: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    """A passphrase-protected identity file in age's scrypt format; sealer opens it with the
    passphrase from SEALER_PASSPHRASE_FILE; a wrong passphrase is a one-line error."""
    from sealer._interop.age import encrypt_identity_file

    root, key, env = repo
    (root / "deploy/prod/db.yaml").write_text(SECRET)
    assert run(root, env, "seal", "deploy/prod/db.yaml").returncode == 0
    protected = tmp_path / "prod.age"
    protected.write_bytes(encrypt_identity_file(key.read_text(), "correct horse", work_factor=10))
    protected.chmod(0o600)
    # An age scrypt file (tests/test_interop_age.py opens these with the real `age -d` under a pty).
    assert protected.read_bytes().startswith(b"age-encryption.org/v1\n-> scrypt ")
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    pw.chmod(0o600)
    r = run(
        root,
        {**env, "SEALER_PASSPHRASE_FILE": str(pw)},
        "unseal",
        "deploy/prod/db.yaml",
        "--format",
        "dotenv",
        "-i",
        str(protected),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "password=pw-CANARY-1\n"
    pw.write_text("wrong\n")
    r = run(root, {**env, "SEALER_PASSPHRASE_FILE": str(pw)}, "unseal", "deploy/prod/db.yaml", "-i", str(protected))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "passphrase" in r.stderr
