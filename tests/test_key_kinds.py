"""The key kinds beyond age X25519: the post-quantum hybrid and ssh-ed25519 custodian keys."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Repo, require_tool
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from sealer._envelope import seal, unseal
from sealer._format import Context, parse_token
from sealer._format import bech32 as _bech32
from sealer._keys import generate_identity, parse_identity, parse_recipient
from sealer.errors import UnsealError

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
    # The envelope itself seals to any mix, and either key opens the token: that is why the registry
    # refuses to put a classic key beside a post-quantum one (tests below).
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
    repo = Repo.create(tmp_path, "prod", keys=("prod",), env={"PATH": "/usr/bin:/bin"})
    repo.ok("keys", "add", "prod", ssh_key.with_suffix(".pub").read_text().strip(), "--recovery", "--label", "safe")
    repo.write(
        "deploy/prod/db.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"
    )
    repo.ok("seal", "deploy/prod/db.yaml")
    token = repo.read("deploy/prod/db.yaml").split("password: ")[1].split()[0]
    assert len(parse_token(token).kids) == 2
    r = repo.ok("unseal", "deploy/prod/db.yaml", "--format", "dotenv", "-i", str(ssh_key))
    assert r.stdout == "password=hunter2\n"


def test_wrong_kind_strings_are_refused_without_echo() -> None:
    from sealer.errors import KeyFormatError

    secret = generate_identity("mlkem768x25519").encode()
    with pytest.raises(KeyFormatError) as info:
        parse_recipient(secret)
    assert secret[20:40] not in str(info.value)
    with pytest.raises(KeyFormatError, match="ssh-ed25519"):
        parse_recipient("ssh-rsa AAAAB3NzaC1yc2E")


# --- one environment, one kind: post-quantum and classic keys are not mixed -------------------------


class Cli(Repo):
    """A fresh repository with one environment, prod, and no key yet; private keys go to `keydir`."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, env={"SEALER_AUDIT_LOG": "off", "PATH": "/usr/bin:/bin"})
        self.init("prod")

    def key(self, name: str) -> str:
        return str(self.keydir / f"{name}.txt")

    @property
    def registry(self) -> Path:
        return self.root / "keys" / "prod.yaml"

    def secret(self, name: str = "db") -> Path:
        text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  password: hunter2\n"
        return self.write(f"deploy/prod/{name}.yaml", text)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _x25519_recipient() -> str:
    return generate_identity("x25519").recipient.encode()


def _ssh_recipient() -> str:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def _assert_mix_refused(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr  # one line, no traceback
    assert lines[0].startswith("sealer: error: refusing to ")
    assert "a classic key alone opens every value, so the post-quantum protection is void" in lines[0]
    assert "--allow-mixed-kinds" in lines[0]


def test_kinds_know_whether_they_are_post_quantum() -> None:
    assert generate_identity("mlkem768x25519").recipient.post_quantum
    assert not generate_identity("x25519").recipient.post_quantum
    assert not parse_recipient(_ssh_recipient()).post_quantum


@pytest.mark.parametrize("classic", [_x25519_recipient, _ssh_recipient], ids=["x25519", "ssh-ed25519"])
def test_classic_recovery_key_in_a_post_quantum_environment_is_refused(cli: Cli, classic: Callable[[], str]) -> None:
    cli.ok("keys", "generate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq"))
    before = cli.registry.read_bytes()
    r = cli.run("keys", "add", "prod", classic(), "--recovery")
    _assert_mix_refused(r)
    assert "refusing to add recovery key" in r.stderr
    assert "sealer keys generate prod --recovery --kind mlkem768x25519" in r.stderr  # what to do instead
    assert cli.registry.read_bytes() == before


def test_every_key_command_refuses_a_mix_and_writes_nothing(cli: Cli) -> None:
    cli.ok("keys", "generate", "prod", "--out", cli.key("classic"))
    recovery = _x25519_recipient()
    cli.ok("keys", "add", "prod", recovery, "--recovery", "--label", "safe")
    before = cli.registry.read_bytes()
    attempts = {
        "pq-recovery": ("keys", "generate", "prod", "--recovery", "--kind", "mlkem768x25519", "--out", cli.key("a")),
        "pq-added": ("keys", "generate", "prod", "--add", "--kind", "mlkem768x25519", "--out", cli.key("b")),
        "pq-rotated": ("keys", "rotate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("c")),
        "pq-registered": ("keys", "add", "prod", generate_identity("mlkem768x25519").recipient.encode()),
    }
    for name, args in attempts.items():
        r = cli.run(*args)
        _assert_mix_refused(r)
        assert cli.registry.read_bytes() == before, name
    # A refused key leaves no private key behind either.
    assert sorted(p.name for p in cli.keydir.iterdir()) == ["classic.txt"]
    # The rotation's hint names the classic recovery key to retire first.
    r = cli.run("keys", "rotate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("c"))
    assert f"sealer keys retire prod {parse_recipient(recovery).kid} --force" in r.stderr


def test_allow_mixed_kinds_is_recorded_and_lapses_when_the_mix_is_gone(cli: Cli) -> None:
    from sealer._config import load_config

    cli.ok("keys", "generate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq"))
    recovery = generate_identity("x25519")
    cli.ok("keys", "add", "prod", recovery.recipient.encode(), "--recovery", "--allow-mixed-kinds")
    assert "allow_mixed_kinds: true" in cli.registry.read_text()
    # Recorded, so sealing (which needs no flag) goes ahead and the classic key opens the value.
    secret = cli.secret()
    cli.ok("seal", str(secret))
    token = parse_token(secret.read_text().split("password: ")[1].split()[0])
    assert len(token.kids) == 2 and recovery.kid in token.kids
    # Further mixing keys need no new flag while the opt-in stands.
    cli.ok("keys", "add", "prod", _ssh_recipient(), "--recovery")
    # Once the environment is all post-quantum again, the opt-in is dropped: a later mix needs a new one.
    reg = load_config(cli.root).registry("prod")
    for k in reg.current():
        if not k.post_quantum:
            cli.ok("keys", "retire", "prod", k.kid, "--force")
    assert "allow_mixed_kinds" not in cli.registry.read_text()
    _assert_mix_refused(cli.run("keys", "add", "prod", _x25519_recipient(), "--recovery"))


def test_sealing_refuses_a_hand_edited_mixed_registry(cli: Cli) -> None:
    cli.ok("keys", "generate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq"))
    sealed = cli.secret("sealed")
    cli.ok("seal", str(sealed))  # to the post-quantum key alone: stale once a recovery key is added
    cli.ok("keys", "add", "prod", _x25519_recipient(), "--recovery", "--allow-mixed-kinds")
    # An old registry, or one edited by hand: the mix without the recorded opt-in.
    cli.registry.write_text(cli.registry.read_text().replace("allow_mixed_kinds: true\n", ""))
    plain = cli.secret("plain")
    value = cli.keydir / "value.txt"
    value.write_text("s3cret")
    before = {p: p.read_bytes() for p in (sealed, plain)}
    for args in (
        ("seal", str(plain)),
        ("reseal", "--env", "prod", "-i", cli.key("pq")),
        ("set", str(sealed), "stringData.token", "--from-file", str(value)),
    ):
        r = cli.run(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert "refusing to seal for prod" in r.stderr and "post-quantum protection is void" in r.stderr
        assert "allow_mixed_kinds: true" in r.stderr  # how to accept it, if it is intended
    assert {p: p.read_bytes() for p in (sealed, plain)} == before
    # Deploy-time unsealing is not affected: the rule is about what new values are sealed to.
    assert cli.ok("unseal", str(sealed), "--format", "dotenv", "-i", cli.key("pq")).stdout.strip() == "password=hunter2"


def test_post_quantum_environment_with_post_quantum_recovery_key(cli: Cli) -> None:
    cli.ok("keys", "generate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq"))
    # The kind follows the environment's: no --kind needed for a post-quantum recovery key.
    recipient = cli.ok(
        "keys", "generate", "prod", "--recovery", "--label", "safe", "--out", cli.key("recovery")
    ).stdout.strip()
    assert recipient.startswith("age1pq1")
    assert "role: recovery" in cli.registry.read_text() and "allow_mixed_kinds" not in cli.registry.read_text()
    # One registered from elsewhere too (age-keygen -pq makes the same age1pq1 keys).
    cli.ok("keys", "add", "prod", generate_identity("mlkem768x25519").recipient.encode(), "--recovery")
    secret = cli.secret()
    cli.ok("seal", str(secret))
    assert len(parse_token(secret.read_text().split("password: ")[1].split()[0]).kids) == 3
    out = cli.ok("unseal", str(secret), "--format", "dotenv", "-i", cli.key("recovery")).stdout.strip()
    assert out == "password=hunter2"


def test_rotating_a_classic_environment_to_post_quantum(cli: Cli) -> None:
    """The old classic key is retiring during the rotation: it opens values but gets no new ones,
    so the environment seals to the post-quantum key alone; reseal moves every value onto it."""
    old = cli.ok("keys", "generate", "prod", "--out", cli.key("old")).stdout.strip()
    secret = cli.secret()
    cli.ok("seal", str(secret))
    cli.ok("keys", "rotate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("new"))
    text = cli.registry.read_text()
    assert "state: retiring" in text and "allow_mixed_kinds" not in text
    cli.ok("reseal", "--env", "prod", "-i", cli.key("old"))
    kids = parse_token(secret.read_text().split("password: ")[1].split()[0]).kids
    new = parse_identity((cli.keydir / "new.txt").read_text().splitlines()[-1])
    assert kids == (new.kid,) and parse_recipient(old).kid not in kids
    assert (
        cli.ok("unseal", str(secret), "--format", "dotenv", "-i", cli.key("new")).stdout.strip() == "password=hunter2"
    )
    # With a classic recovery key: retire it first, rotate, then a post-quantum recovery key.
    cli.ok("keys", "rotate", "prod", "--kind", "x25519", "--out", cli.key("classic2"))
    ssh = _ssh_recipient()
    cli.ok("keys", "add", "prod", ssh, "--recovery")
    _assert_mix_refused(cli.run("keys", "rotate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq2")))
    cli.ok("keys", "retire", "prod", parse_recipient(ssh).kid, "--force")
    cli.ok("keys", "rotate", "prod", "--kind", "mlkem768x25519", "--out", cli.key("pq2"))
    assert (
        cli.ok("keys", "generate", "prod", "--recovery", "--out", cli.key("pq-recovery"))
        .stdout.strip()
        .startswith("age1pq1")
    )


def test_library_functions_refuse_a_mix_unless_allowed(tmp_path: Path) -> None:
    from sealer._config import load_config
    from sealer._registry import Registry, add_key, generate_key, rotate_key
    from sealer._repo_init import init_repo
    from sealer._seal import seal_file
    from sealer.errors import ConfigError

    root, out = tmp_path / "repo", tmp_path / "out"
    init_repo(root, ["prod"])
    generate_key(root, "prod", out=out / "classic.txt")
    add_key(root, "prod", _x25519_recipient(), recovery=True)
    with pytest.raises(ConfigError, match="post-quantum protection is void"):
        rotate_key(root, "prod", kind="mlkem768x25519", out=out / "pq.txt")
    with pytest.raises(ConfigError, match="post-quantum protection is void"):
        generate_key(root, "prod", kind="mlkem768x25519", recovery=True, out=out / "pq.txt")
    assert not (out / "pq.txt").exists()
    assert not Registry.load(root, "prod").allow_mixed_kinds
    record, _previous, _path = rotate_key(
        root, "prod", kind="mlkem768x25519", out=out / "pq.txt", allow_mixed_kinds=True
    )
    reg = Registry.load(root, "prod")
    assert reg.allow_mixed_kinds and record.post_quantum
    assert [k.post_quantum for k in reg.current()] == [True, False]
    assert len(reg.recipients()) == 2  # recorded: sealing goes ahead
    reg.path.write_text(reg.path.read_text().replace("allow_mixed_kinds: true\n", ""))
    with pytest.raises(ConfigError, match="refusing to seal for prod"):
        Registry.load(root, "prod").recipients()
    # The seal path reads the registry from disk: the same refusal, and the file is not touched.
    doc = root / "deploy" / "prod" / "db.yaml"
    doc.parent.mkdir(parents=True)
    doc.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: pw\n")
    with pytest.raises(ConfigError, match="refusing to seal for prod") as info:
        seal_file(load_config(root), doc)
    assert info.value.exit_code == 1
    assert "password: pw\n" in doc.read_text()


def test_check_reports_a_registry_that_mixes_kinds(tmp_path: Path) -> None:
    """`sealer check` names the mix that `seal` refuses, so CI sees it before a developer does."""
    from sealer._check import check
    from sealer._config import Config
    from sealer._registry import add_key, generate_key
    from sealer._repo_init import init_repo

    root = tmp_path / "repo"
    init_repo(root, ["prod"])
    generate_key(root, "prod", kind="mlkem768x25519", out=tmp_path / "pq.txt")
    reg = root / "keys" / "prod.yaml"
    classic = generate_identity().recipient.encode()
    add_key(root, "prod", classic, recovery=True, allow_mixed_kinds=True)
    text = reg.read_text().replace("allow_mixed_kinds: true\n", "")  # a hand edit drops the opt-in
    reg.write_text(text)
    codes = [p.code for p in check(Config.load(root)).problems]
    assert "mixed-kinds" in codes
