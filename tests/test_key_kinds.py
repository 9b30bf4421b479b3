"""The key kinds beyond age X25519: the post-quantum hybrid and ssh-ed25519 custodian keys."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from sealer import _bech32
from sealer._envelope import Context, parse_token, seal, unseal
from sealer._keys import generate_identity, parse_identity, parse_recipient
from sealer.errors import UnsealError

SEALER = str(Path(sys.executable).parent / "sealer")
CTX = Context("prod", "strict", "ns", "db", ("stringData", "password"))


def test_hybrid_encoding_follows_the_xwing_seed_expansion() -> None:
    """The identity is a 32-byte seed; the recipient is ML-KEM-768 pk || X25519 pk derived from
    SHAKE256(seed, 96), as age encodes age1pq1 keys. Recomputed here from the spec."""
    ident = generate_identity("mlkem768x25519")
    text = ident.encode()
    assert text.startswith("AGE-SECRET-KEY-PQ-1")
    hrp, seed = _bech32.decode(text)
    assert hrp == "age-secret-key-pq-" and len(seed) == 32
    expanded = hashlib.shake_256(seed).digest(96)
    pk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
    pk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
    rec = ident.recipient.encode()
    assert rec.startswith("age1pq1")
    assert _bech32.decode(rec) == ("age1pq", pk_m + pk_x)
    assert parse_identity(text).kid == ident.kid == parse_recipient(rec).kid


def test_hybrid_seals_and_opens_and_refuses_others() -> None:
    a, b = generate_identity("mlkem768x25519"), generate_identity("mlkem768x25519")
    tok = seal("s", b"pq-secret", CTX, [a.recipient], sealed_at=1_800_000_000)
    assert unseal(parse_token(tok), CTX, {a.kid: a}.get, where="t") == b"pq-secret"
    with pytest.raises(UnsealError):
        unseal(parse_token(tok), CTX, {a.kid: b}.get, where="t")
    # Mixed with an X25519 recovery key: either opens.
    c = generate_identity()
    tok = seal("s", b"both", CTX, [a.recipient, c.recipient], sealed_at=1_800_000_000)
    assert unseal(parse_token(tok), CTX, {c.kid: c}.get, where="t") == b"both"
    assert unseal(parse_token(tok), CTX, {a.kid: a}.get, where="t") == b"both"


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "custodian@example", "-f", str(key)], check=True)
    return key


def test_ssh_ed25519_recipient_and_identity_from_real_ssh_keygen(ssh_key: Path) -> None:
    pub = ssh_key.with_suffix(".pub").read_text()
    rec = parse_recipient(pub)
    assert rec.kind == "ssh-ed25519"
    assert rec.encode() == " ".join(pub.split()[:2])  # the comment is not part of the key
    ident = parse_identity(ssh_key.read_text())
    assert ident.kid == rec.kid
    tok = seal("s", b"break-glass", CTX, [rec], sealed_at=1_800_000_000)
    assert unseal(parse_token(tok), CTX, {ident.kid: ident}.get, where="t") == b"break-glass"


def test_ssh_key_as_recovery_recipient_through_the_cli(ssh_key: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"SEALER_CONFIG_DIR": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SEALER, *args], cwd=repo, env=env, input=stdin, capture_output=True, text=True)

    assert run("init", "--env", "prod").returncode == 0
    assert run("keys", "generate", "prod", "--out", str(tmp_path / "prod.txt")).returncode == 0
    r = run("keys", "add", "prod", ssh_key.with_suffix(".pub").read_text().strip(), "--recovery", "--label", "safe")
    assert r.returncode == 0, r.stderr
    (repo / "deploy" / "prod").mkdir(parents=True)
    (repo / "deploy/prod/db.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"
    )
    assert run("seal", "deploy/prod/db.yaml").returncode == 0
    token = (repo / "deploy/prod/db.yaml").read_text().split("password: ")[1].split()[0]
    assert len(parse_token(token).kids) == 2
    r = run("unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(ssh_key))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "password=hunter2\n"


def test_wrong_kind_strings_are_refused_without_echo() -> None:
    from sealer.errors import KeyFormatError

    secret = generate_identity("mlkem768x25519").encode()
    with pytest.raises(KeyFormatError) as info:
        parse_recipient(secret)
    assert secret[20:40] not in str(info.value)
    with pytest.raises(KeyFormatError, match="ssh-ed25519"):
        parse_recipient("ssh-rsa AAAAB3NzaC1yc2E")
