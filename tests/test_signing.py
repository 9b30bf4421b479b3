"""Signed sealing: signer keys, the signed content, the stale-signature rule, and enforcement by
`check` and `unseal` under `require_signature`.

The Ed25519 wiring is checked against RFC 8032's first test vector and the signed bytes against
docs/format.md §6 written out by hand, never against the code's own output.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from test_cli import SECRET, Repo, assert_clean_failure, snapshot

from sealer import _bech32
from sealer._config import Policy
from sealer._document import load
from sealer._keys import Recipient, generate_identity
from sealer._registry import Registry, SignerRecord
from sealer._seal import Signing, seal_text, set_value, set_value_report
from sealer._signing import (
    SignatureError,
    SignaturePolicy,
    SignerKey,
    content_bytes,
    parse_signer_public,
    parse_signer_secret,
    signer_kid,
)
from sealer.errors import InputError, KeyFormatError, UsageError

# --- keys ------------------------------------------------------------------------------------------

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_signer_key_is_rfc8032_ed25519() -> None:
    key = SignerKey(RFC8032_SEED)
    assert key.public.raw == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIG_EMPTY


def test_signer_key_encodings() -> None:
    key = SignerKey(RFC8032_SEED)
    public = key.public.text
    assert public == _bech32.encode("sealer-signer", RFC8032_PUBLIC)
    assert public.startswith("sealer-signer1")
    import hashlib

    assert key.kid == hashlib.sha256(public.encode()).hexdigest()[:16] == signer_kid(public)
    secret = key.encode()
    assert secret.startswith("SEALER-SIGNER-SECRET-KEY-1") and secret == secret.upper()
    assert _bech32.decode(secret) == ("sealer-signer-secret-key-", RFC8032_SEED)
    assert parse_signer_secret(secret).public == key.public
    assert parse_signer_public(public).raw == RFC8032_PUBLIC
    assert key.encode() not in repr(key)


@pytest.mark.parametrize(
    "text",
    [
        "sealer-signer1qqqq",  # bad checksum
        "age1qazw5h9f07klm4x44z4gqflfepckdlsxefzhxpt89stu6rratfvq94u9qr",  # an age recipient
        _bech32.encode("sealer-signer", b"\x01" * 31),  # wrong length
        _bech32.encode("sealer-signer", b"\x01" * 32).upper(),  # public keys are lower case
    ],
)
def test_bad_signer_public_keys(text: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_signer_public(text)


def test_private_key_given_as_public_is_refused_without_echo() -> None:
    secret = SignerKey.generate().encode()
    with pytest.raises(KeyFormatError) as e:
        parse_signer_public(secret)
    assert secret not in str(e.value) and "private key" in str(e.value)
    with pytest.raises(KeyFormatError) as e2:
        parse_signer_secret(secret[:-1] + ("Q" if secret[-1] != "Q" else "P"))
    assert secret[:40] not in str(e2.value)


# --- the signed content ----------------------------------------------------------------------------


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _s(tag: str, value: str) -> bytes:
    return b"s" + _lp(f"tag:yaml.org,2002:{tag}".encode()) + _lp(value.encode())


def test_content_bytes_match_the_spec_written_out() -> None:
    text = "kind: Config\na: 1\nb: 'x'\nl: [true, ~]\nsealer:\n  version: 1\n  env: prod\n  scope: env\n"
    doc = load(text, "t.yaml").docs[0]
    assert doc.meta is not None
    entries = [
        _s("str", "kind") + _s("str", "Config"),
        _s("str", "a") + _s("int", "1"),
        _s("str", "b") + _s("str", "x"),
        _s("str", "l") + b"l" + (2).to_bytes(4, "big") + _s("bool", "true") + _s("null", "~"),
    ]
    expected = (
        b"sealer.sig.v1\x00"
        + _lp(b"alice")
        + _lp(b"0123456789abcdef")
        + _lp(b"1")
        + _lp(b"prod")
        + _lp(b"env")
        + b"m"
        + (4).to_bytes(4, "big")
        + b"".join(sorted(entries))
    )
    assert content_bytes(doc, doc.meta, "alice", "0123456789abcdef", "t.yaml") == expected


def test_content_ignores_formatting_but_not_meaning() -> None:
    base = "# c\nkind: Config\na: 1\nb: x\nsealer:\n  version: 1\n  env: prod\n  scope: env\n"
    reordered = 'sealer:\n  scope: env\n  env: prod\n  version: 1\nb: "x"   # q\na: 1\nkind:   Config\n'
    moved = base.replace("a: 1", "c: 1")
    retyped = base.replace("a: 1", "a: '1'")

    def cb(text: str) -> bytes:
        d = load(text, "t").docs[0]
        assert d.meta is not None
        return content_bytes(d, d.meta, "n", "0" * 16, "t")

    assert cb(base) == cb(reordered)
    assert cb(base) != cb(moved)
    assert cb(base) != cb(retyped)
    assert cb(base) != cb(base.replace("env: prod", "env: staging"))


def test_alias_bomb_and_recursion_are_refused() -> None:
    bomb = "kind: Secret\nmetadata:\n  name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 7):
        bomb += f"b{i}: &b{i} [{', '.join(['*' + ('a' if i == 1 else f'b{i - 1}')] * 10)}]\n"
    bomb += "sealer:\n  version: 1\n  env: prod\n  scope: env\n"
    d = load(bomb, "bomb.yaml").docs[0]
    assert d.meta is not None
    with pytest.raises(InputError, match="more than"):
        content_bytes(d, d.meta, "n", "0" * 16, "bomb.yaml")
    loop = "kind: Secret\nmetadata:\n  name: x\na: &a [x, *a]\nsealer:\n  version: 1\n  env: prod\n  scope: env\n"
    d = load(loop, "loop.yaml").docs[0]
    assert d.meta is not None
    with pytest.raises(InputError, match="recursive"):
        content_bytes(d, d.meta, "n", "0" * 16, "loop.yaml")


# --- signing through seal and set ------------------------------------------------------------------

ENV = "prod"


@pytest.fixture
def recipients() -> list[Recipient]:
    return [generate_identity().recipient]


def _policy(*keys: tuple[str, SignerKey], required: bool = True) -> SignaturePolicy:
    return SignaturePolicy(ENV, required, tuple((n, k.kid, k.public.text) for n, k in keys))


def _seal(text: str, recipients: list[Recipient], key: SignerKey | None, name: str = "alice") -> str:
    signing = Signing(key, name) if key else None
    return seal_text(text, "db.yaml", env=ENV, recipients=recipients, signing=signing)[0]


def _check(text: str, policy: SignaturePolicy) -> list[SignatureError]:
    return policy.problems(load(text, "db.yaml"))


def test_sign_verify_and_every_kind_of_tampering(recipients: list[Recipient]) -> None:
    alice = SignerKey.generate()
    policy = _policy(("alice", alice))
    signed = _seal(SECRET, recipients, alice)
    assert "  signature:\n    signer: alice\n" in signed
    assert _check(signed, policy) == []
    # Sealing again with the same key changes no byte (Ed25519 is deterministic).
    assert _seal(signed, recipients, alice) == signed
    lines = signed.splitlines(keepends=True)
    pw = next(i for i, line in enumerate(lines) if line.startswith("  password:"))
    # A value removed.
    removed = "".join(lines[:pw] + lines[pw + 1 :])
    assert [e.code for e in _check(removed, policy)] == ["bad-signature"]
    # A value added, plaintext or sealed by anyone with the public key.
    added = signed.replace("stringData:\n", "stringData:\n  extra: evil\n")
    assert [e.code for e in _check(added, policy)] == ["bad-signature"]
    # A token altered (one character of the blob), and two tokens swapped.
    i = lines[pw].index(",", lines[pw].index(",") + 1) + 10
    altered = signed.replace(lines[pw], lines[pw][:i] + ("A" if lines[pw][i] != "A" else "B") + lines[pw][i + 1 :])
    assert [e.code for e in _check(altered, policy)] == ["bad-signature"]
    # The signature itself altered, or its signer renamed.
    sig_line = next(line for line in lines if line.startswith("    sig: "))
    flipped = sig_line[:20] + ("A" if sig_line[20] != "A" else "B") + sig_line[21:]
    assert [e.code for e in _check(signed.replace(sig_line, flipped), policy)] == ["bad-signature"]
    renamed = signed.replace("signer: alice", "signer: bob")
    assert [e.code for e in _check(renamed, policy)] == ["unknown-signer"]
    # Formatting is not content: a comment and re-quoting keep the signature valid.
    reformatted = signed.replace("stringData:\n", "stringData:   # reviewed\n").replace("username: ", "username:   ")
    assert _check(reformatted, policy) == []


def test_unknown_signer_and_unsigned(recipients: list[Recipient]) -> None:
    alice, mallory = SignerKey.generate(), SignerKey.generate()
    by_mallory = _seal(SECRET, recipients, mallory, name="mallory")
    errors = _check(by_mallory, _policy(("alice", alice)))
    assert [e.code for e in errors] == ["unknown-signer"]
    assert "'mallory'" in str(errors[0]) and "db.yaml" in str(errors[0]) and mallory.kid in str(errors[0])
    # Alice's key id under Mallory's name is no better.
    forged = _seal(SECRET, recipients, alice, name="mallory")
    assert [e.code for e in _check(forged, _policy(("alice", alice)))] == ["unknown-signer"]
    unsigned = _seal(SECRET, recipients, None)
    assert [e.code for e in _check(unsigned, _policy(("alice", alice)))] == ["unsigned"]
    assert _check(unsigned, _policy(("alice", alice), required=False)) == []
    # Not required, but present and unverifiable: still refused.
    assert [e.code for e in _check(by_mallory, _policy(("alice", alice), required=False))] == ["unknown-signer"]


def test_required_signature_covers_every_document_of_a_sealed_file(recipients: list[Recipient]) -> None:
    alice = SignerKey.generate()
    two = SECRET + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n"
    signed = _seal(two, recipients, alice)
    assert signed.count("  signature:\n") == 2
    assert _check(signed, _policy(("alice", alice))) == []
    # A plaintext document slipped into a signed file is refused.
    smuggled = signed + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  pw: evil\n"
    assert [e.code for e in _check(smuggled, _policy(("alice", alice)))] == ["unsigned"]
    # A file with no sealed content needs no signature (unseal skips it).
    assert _check("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n", _policy(("alice", alice))) == []


def test_stale_signature_is_refused_or_dropped_never_left(recipients: list[Recipient]) -> None:
    alice = SignerKey.generate()
    signed = _seal(SECRET, recipients, alice)
    kw = {"env": ENV, "recipients": recipients}
    with pytest.raises(UsageError) as e:
        set_value(signed, "db.yaml", ("stringData", "password"), b"new", **kw)
    assert "signed by 'alice'" in str(e.value) and "--sign-with" in str(e.value)
    with pytest.raises(UsageError):
        seal_text(signed.replace("stringData:\n", "stringData:\n  extra: plain\n"), "db.yaml", **kw)
    new, dropped = set_value_report(
        signed, "db.yaml", ("stringData", "password"), b"new", signing=Signing(drop=True), **kw
    )
    assert dropped == [0] and "signature:" not in new and "sealer:\n  version: 1" in new
    resigned = set_value(signed, "db.yaml", ("stringData", "password"), b"new", signing=Signing(alice, "alice"), **kw)
    assert _check(resigned, _policy(("alice", alice))) == []
    # Sealing an unchanged signed file without a key is no change: nothing refused, no byte moved.
    assert seal_text(signed, "db.yaml", **kw)[0] == signed


def test_only_the_changed_document_is_refused(recipients: list[Recipient]) -> None:
    alice = SignerKey.generate()
    two = SECRET + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: other\nstringData:\n  k: v\n"
    signed = _seal(two, recipients, alice)
    unsigned_second = signed.rsplit("  signature:", 1)[0]
    unsigned_second += "\n".join(signed.rsplit("  signature:", 1)[1].splitlines()[4:])
    kw = {"env": ENV, "recipients": recipients}
    # Changing the unsigned second document is fine; the first keeps its valid signature.
    out = set_value(unsigned_second, "db.yaml", ("stringData", "k"), b"w", document=1, **kw)
    assert out.count("  signature:\n") == 1
    assert _check(out, _policy(("alice", alice), required=False)) == []


def test_malformed_signature_block() -> None:
    bad = SECRET + "sealer:\n  version: 1\n  env: prod\n  scope: strict\n  signature:\n    signer: alice\n    sig: x\n"
    with pytest.raises(InputError, match="signature in the sealer: block is malformed"):
        load(bad, "db.yaml")


def test_registry_keeps_signers(tmp_path: Path) -> None:
    import datetime as dt

    key = SignerKey.generate()
    reg = Registry(tmp_path / "keys" / "prod.yaml", "prod", [])
    reg.signers.append(SignerRecord("alice", key.public.text, key.kid, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    reg.save()
    again = Registry.load(tmp_path, "prod")
    assert again.signers == reg.signers
    policy = SignaturePolicy.of(again, Policy(require_signature=True))
    assert policy.required and policy.signers == (("alice", key.kid, key.public.text),)
    text = reg.path.read_text().replace(key.kid, "0" * 16)
    reg.path.write_text(text)
    from sealer.errors import ConfigError

    with pytest.raises(ConfigError, match="does not match its key"):
        Registry.load(tmp_path, "prod")


# --- the CLI ---------------------------------------------------------------------------------------

CONFIG = """\
version: 1
environments:
  staging:
    paths: ["deploy/staging/**"]
  prod:
    paths: ["deploy/prod/**"]
    policy:
      require_signature: true
"""


@pytest.fixture
def srepo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo", tmp_path / "home")
    r.root.mkdir()
    r.ok("init", "--env", "staging", "--env", "prod")
    (r.root / ".sealer.yaml").write_text(CONFIG)
    for env in ("staging", "prod"):
        key = tmp_path / "keys" / f"{env}.txt"
        r.ok("keys", "generate", env, "--out", str(key))
        r.keys[env] = key
    r.keys["alice"] = tmp_path / "signers" / "alice.txt"
    r.ok("signers", "generate", "alice", "--env", "prod", "--out", str(r.keys["alice"]))
    return r


def test_signers_generate_add_list_remove(srepo: Repo, tmp_path: Path) -> None:
    alice = srepo.keys["alice"]
    assert stat.S_IMODE(alice.stat().st_mode) == 0o600
    text = alice.read_text()
    assert "# sealer signer: alice" in text and "SEALER-SIGNER-SECRET-KEY-1" in text
    rows = json.loads(srepo.ok("signers", "list", "--output", "json").stdout)
    assert [(r["env"], r["name"], r["required"]) for r in rows] == [("prod", "alice", True)]
    assert rows[0]["key"] in text
    # Inside the repository: refused, nothing written.
    before = snapshot(srepo.root)
    r = srepo.run("signers", "generate", "bob", "--out", str(srepo.root / "bob.txt"))
    assert_clean_failure(r, "inside the repository", code=2)
    assert snapshot(srepo.root) == before
    # A key made elsewhere, registered by its public half.
    out = json.loads(
        srepo.ok("signers", "generate", "bob", "--out", str(tmp_path / "bob.txt"), "--output", "json").stdout
    )
    srepo.ok("signers", "add", "staging", "bob", out["key"])
    assert_clean_failure(srepo.run("signers", "add", "staging", "bob", out["key"]), "already allowed")
    assert_clean_failure(srepo.run("signers", "add", "staging", "bob", "sealer-signer1qqqq"), "signer public key")
    assert_clean_failure(srepo.run("signers", "add", "staging", "bad name!", out["key"]), "bad signer name", code=2)
    srepo.ok("signers", "remove", "staging", "bob")
    assert [r["name"] for r in json.loads(srepo.ok("signers", "list", "--output", "json").stdout)] == ["alice"]
    # Keys still work as before: the registry rewrite kept them.
    assert json.loads(srepo.ok("keys", "list", "--output", "json").stdout)[0]["state"] == "active"


def test_require_signature_end_to_end(srepo: Repo, tmp_path: Path) -> None:
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml")
    prod = str(srepo.keys["prod"])
    # Unsigned under require_signature: check and unseal refuse, naming the file.
    r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", prod)
    assert_clean_failure(r, "deploy/prod/db.yaml", "not signed", "require_signature")
    assert r.stdout == ""
    r = srepo.run("check")
    assert r.returncode == 1 and "deploy/prod/db.yaml: document 0 is not signed" in r.stdout
    # Signed by an allowed signer: both pass.
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    srepo.ok("check")
    assert "pw-CANARY-7f3a9" in srepo.ok("unseal", "deploy/prod/db.yaml", "-i", prod).stdout
    signed = f.read_text()
    # Altered after signing: a value removed.
    f.write_text("".join(line for line in signed.splitlines(keepends=True) if not line.startswith("  username:")))
    r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", prod)
    assert_clean_failure(r, "deploy/prod/db.yaml", "'alice'", "does not match the content")
    assert "deploy/prod/db.yaml: document 0: the signature by 'alice' does not match" in srepo.run("check").stdout
    # The signer is no longer allowed: an unknown signer.
    f.write_text(signed)
    srepo.ok("signers", "remove", "prod", "alice")
    r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", prod)
    assert_clean_failure(r, "deploy/prod/db.yaml", "signed by 'alice'", "not an allowed signer of prod")
    r = srepo.run("check", "--output", "json")
    assert r.returncode == 1
    codes = {p["code"] for p in json.loads(r.stdout)["problems"]}
    assert codes == {"unknown-signer", "no-signer"}


def test_set_on_signed_document(srepo: Repo) -> None:
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    alice = str(srepo.keys["alice"])
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    before = f.read_bytes()
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.password", stdin="new-CANARY\n")
    assert_clean_failure(r, "deploy/prod/db.yaml", "signed by 'alice'", "--sign-with", code=2)
    assert f.read_bytes() == before
    r = srepo.ok("set", "deploy/prod/db.yaml", "stringData.password", "--drop-signature", stdin="new-CANARY\n")
    assert "dropped the signature of document 0" in r.stderr and "signature:" not in f.read_text()
    srepo.ok("set", "deploy/prod/db.yaml", "stringData.password", "--sign-with", alice, stdin="newer-CANARY\n")
    srepo.ok("check")
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.x", "--sign-with", alice, "--drop-signature", stdin="v")
    assert_clean_failure(r, "exclude each other", code=2)


def test_sign_with_key_not_allowed_or_unsafe(srepo: Repo, tmp_path: Path) -> None:
    srepo.write("deploy/staging/db.yaml", SECRET)
    before = snapshot(srepo.root)
    r = srepo.run("seal", "deploy/staging/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    assert_clean_failure(r, "not an allowed signer of staging", "sealer signers add staging", code=2)
    assert snapshot(srepo.root) == before
    srepo.keys["alice"].chmod(0o644)
    r = srepo.run("seal", "deploy/staging/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    assert_clean_failure(r, str(srepo.keys["alice"]), "readable by group or others", code=2)
    assert "SEALER-SIGNER-SECRET-KEY" not in r.stderr
    r = srepo.run("seal", "deploy/staging/db.yaml", "--sign-with", str(tmp_path / "missing.txt"))
    assert_clean_failure(r, "missing.txt", "not found")


def test_reseal_refuses_then_resigns(srepo: Repo, tmp_path: Path) -> None:
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    alice = str(srepo.keys["alice"])
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    srepo.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod2.txt"))
    before = f.read_bytes()
    r = srepo.run("reseal", "--env", "prod", "-i", str(srepo.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "signed documents", "--sign-with", code=2)
    assert f.read_bytes() == before
    srepo.ok("reseal", "--env", "prod", "-i", str(srepo.keys["prod"]), "--sign-with", alice)
    assert f.read_bytes() != before
    srepo.ok("check", "-i", str(tmp_path / "keys" / "prod2.txt"))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
