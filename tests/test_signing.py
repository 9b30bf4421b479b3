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
from typing import Any

import pytest
from conftest import SECRET, Repo, assert_clean_failure

from sealer._config import Policy
from sealer._document import load
from sealer._format import bech32 as _bech32
from sealer._keys import Recipient, generate_identity
from sealer._registry import Registry, SignerRecord
from sealer._seal import seal_text, set_value, set_value_report
from sealer._signing import (
    SignatureError,
    SignaturePolicy,
    SignerKey,
    Signing,
    content_bytes,
    parse_signer_public,
    parse_signer_secret,
    repo_path,
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


def _s(tag: str, value: str, style: str = "p") -> bytes:
    """node(scalar) of docs/format.md §6, written out: "s" ‖ style ‖ lp(tag) ‖ lp(value)."""
    return b"s" + style.encode() + _lp(f"tag:yaml.org,2002:{tag}".encode()) + _lp(value.encode())


def _cb(text: str, path: str = "deploy/prod/t.yaml", **kw: object) -> bytes:
    d = load(text, "t.yaml").docs[0]
    assert d.meta is not None
    return content_bytes(d, d.meta, "n", "0" * 16, path=path, text=text, source="t.yaml", **kw)  # type: ignore[arg-type]


META = "sealer:\n  version: 1\n  env: prod\n  scope: env\n"


def test_content_bytes_match_the_spec_written_out() -> None:
    text = "kind: Config\na: 1\nb: 'x'\nc: !!str off\nd: off\nl: [true, ~]\n" + META
    doc = load(text, "t.yaml").docs[0]
    assert doc.meta is not None
    entries = [
        _s("str", "kind") + _s("str", "Config"),
        _s("str", "a") + _s("int", "1"),
        _s("str", "b") + _s("str", "x", "q"),
        _s("str", "c") + _s("str", "off", "t"),
        _s("str", "d") + _s("str", "off"),
        _s("str", "l")
        + b"l"
        + _lp(b"tag:yaml.org,2002:seq")
        + (2).to_bytes(4, "big")
        + _s("bool", "true")
        + _s("null", "~"),
    ]
    expected = (
        b"sealer.sig.v2\x00"
        + _lp(b"alice")
        + _lp(b"0123456789abcdef")
        + _lp(b"1")
        + _lp(b"prod")
        + _lp(b"env")
        + _lp(b"deploy/prod/t.yaml")
        + b"m"
        + _lp(b"tag:yaml.org,2002:map")
        + (6).to_bytes(4, "big")
        + b"".join(sorted(entries))
    )
    got = content_bytes(doc, doc.meta, "alice", "0123456789abcdef", path="deploy/prod/t.yaml", text=text, source="t")
    assert got == expected


def test_v1_content_bytes_are_the_old_message() -> None:
    """The old message, as the previous spec wrote it out: recognised only to say "sign it again"."""
    text = "kind: Config\na: 1\nb: 'x'\nl: [true, ~]\n" + META

    def s1(tag: str, value: str) -> bytes:
        return b"s" + _lp(f"tag:yaml.org,2002:{tag}".encode()) + _lp(value.encode())

    entries = [
        s1("str", "kind") + s1("str", "Config"),
        s1("str", "a") + s1("int", "1"),
        s1("str", "b") + s1("str", "x"),
        s1("str", "l") + b"l" + (2).to_bytes(4, "big") + s1("bool", "true") + s1("null", "~"),
    ]
    expected = (
        b"sealer.sig.v1\x00"
        + _lp(b"n")
        + _lp(b"0" * 16)
        + _lp(b"1")
        + _lp(b"prod")
        + _lp(b"env")
        + b"m"
        + (4).to_bytes(4, "big")
        + b"".join(sorted(entries))
    )
    assert _cb(text, v1=True) == expected


def test_content_covers_the_path() -> None:
    base = "kind: Config\na: 1\n" + META
    assert _cb(base, "deploy/prod/db.yaml") != _cb(base, "deploy/prod/db2.yaml")
    assert _cb(base, "deploy/prod/db.yaml") == _cb(base, "deploy/prod/db.yaml")


def test_content_ignores_formatting_but_not_meaning() -> None:
    base = "# c\nkind: Config\na: 1\nb: x\nq: 'off'\nl: [1, two]\n" + META
    reordered = (
        'sealer:\n  scope: env\n  env: prod\n  version: 1\nl:\n    - 1\n    - two\nq: "off"  # double now\n'
        "b: x   # q\na: 1\nkind:   Config\n"
    )
    assert _cb(base) == _cb(reordered)
    assert _cb(base) != _cb(base.replace("a: 1", "c: 1"))  # moved
    assert _cb(base) != _cb(base.replace("a: 1", "a: '1'"))  # retyped
    assert _cb(base) != _cb(base.replace("env: prod", "env: staging"))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('"off"', "off"),
        ('"0777"', "0777"),
        ("'yes'", "yes"),
        ('"1e3"', "1e3"),
        ("'on'", "on"),
        ("!!str off", "off"),
        ("!!str off", '"off"'),
        ("&a !!str off", "&a off"),
        ("!!str &a off", "&a off"),
        ("|-\n      off", "off"),
    ],
)
def test_unquoting_or_untagging_a_scalar_breaks_the_content(before: str, after: str) -> None:
    """Under YAML 1.2 both sides are the string "off" (so the old message matched); a YAML 1.1
    reader (kubectl, PyYAML) reads the plain `off` as false, `0777` as 511, `1e3` as a string."""
    import yaml

    text = f"kind: Secret\nmetadata:\n  name: x\n  labels:\n    v: {before}\n    w: x\n" + META
    edited = f"kind: Secret\nmetadata:\n  name: x\n  labels:\n    v: {after}\n    w: x\n" + META
    assert _cb(text) != _cb(edited)
    if (before, after) == ('"off"', "off"):  # why it matters: same string under YAML 1.2, not under 1.1
        assert _tag_of_v(text) == _tag_of_v(edited) == "tag:yaml.org,2002:str"
        assert yaml.safe_load(text)["metadata"]["labels"]["v"] == "off"
        assert yaml.safe_load(edited)["metadata"]["labels"]["v"] is False


def _tag_of_v(text: str) -> str:
    labels = dict(load(text, "t").docs[0].root.value)
    metadata = next(v for k, v in labels.items() if k.value == "metadata")
    labels_node = next(v for k, v in metadata.value if k.value == "labels")
    return str(next(v for k, v in labels_node.value if k.value == "v").tag)


def test_the_non_specific_tag_cannot_be_signed() -> None:
    with pytest.raises(InputError, match="non-specific tag"):
        _cb("kind: Config\nv: ! off\n" + META)


def test_alias_bomb_and_recursion_are_refused() -> None:
    bomb = "kind: Secret\nmetadata:\n  name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 7):
        bomb += f"b{i}: &b{i} [{', '.join(['*' + ('a' if i == 1 else f'b{i - 1}')] * 10)}]\n"
    bomb += META
    with pytest.raises(InputError, match="more than"):
        _cb(bomb)
    loop = "kind: Secret\nmetadata:\n  name: x\na: &a [x, *a]\n" + META
    with pytest.raises(InputError, match="recursive"):
        _cb(loop)


def test_repo_path_fallback_reads_the_name_alone(tmp_path: Path) -> None:
    """The doors pass the repository-relative path; without one, only the name is read (no disk)."""
    root = tmp_path / "repo"
    assert repo_path(str(root / "deploy" / "prod" / "db.yaml"), root) == "deploy/prod/db.yaml"
    assert repo_path("deploy/prod/../prod/db.yaml", root) == "deploy/prod/db.yaml"  # root-relative, as check names it
    assert repo_path(str(tmp_path / "elsewhere" / "db.yaml"), root) == "db.yaml"  # outside: the file's name
    assert repo_path("./db.yaml", None) == "db.yaml"


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


def test_signing_vouches_for_new_plaintext_only(recipients: list[Recipient]) -> None:
    """Library level: new plaintext (even a whole new section) in a signed document is sealed and
    signed in one run; any other change since the signature is not vouched for."""
    alice = SignerKey.generate()
    only_data = SECRET.split("stringData:\n")[0] + "data:\n  tls.crt: aGVsbG8gd29ybGQ=\n"
    signed = _seal(only_data, recipients, alice)
    grown = signed.replace("\ndata:\n", "\nstringData:\n  pw: new-CANARY\n  nested: x\ndata:\n", 1)
    resigned = _seal(grown, recipients, alice)
    assert "new-CANARY" not in resigned and _check(resigned, _policy(("alice", alice))) == []
    # A field edited after signing that this run does not seal is not the signer's to vouch for.
    with pytest.raises(SignatureError, match="refusing to sign") as e:
        seal_text(
            signed.replace("type: Opaque", "type: Evil"),
            "db.yaml",
            env=ENV,
            recipients=recipients,
            signing=Signing(alice, "alice"),
        )
    assert e.value.code == "unvouched" and "document 0" in str(e.value) and "db.yaml" in str(e.value)


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
    # A plaintext file is no exception: `sealer unseal FILE` and `exec` would hand out its values.
    plain = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
    assert [e.code for e in _check(plain, _policy(("alice", alice)))] == ["unsigned"]
    assert _check(plain, _policy(required=False)) == []  # not required: nothing to verify


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
    r = Repo.create(tmp_path, "staging", "prod")
    r.write(".sealer.yaml", CONFIG)
    for env in ("staging", "prod"):
        r.generate(env)
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
    before = srepo.snapshot()
    r = srepo.run("signers", "generate", "bob", "--out", str(srepo.root / "bob.txt"))
    assert_clean_failure(r, "inside the repository", code=1)
    assert srepo.snapshot() == before
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
    # Signing values sealed earlier (by anyone holding the public key) is refused: the signer
    # vouches only for values it sealed itself, or that a valid signature already vouches for.
    before = f.read_bytes()
    r = srepo.run("seal", "deploy/prod/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "refusing to sign", "document 0 is not signed", "someone else")
    assert f.read_bytes() == before
    # Sealed from plaintext and signed in one run, by an allowed signer: both pass.
    f.write_text(SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    srepo.ok("check")
    assert "pw-CANARY-7f3a9" in srepo.ok("unseal", "deploy/prod/db.yaml", "-i", prod).stdout
    signed = f.read_text()
    # Altered after signing: a value removed.
    f.write_text("".join(line for line in signed.splitlines(keepends=True) if not line.startswith("  username:")))
    r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", prod)
    assert_clean_failure(r, "deploy/prod/db.yaml", "'alice'", "does not verify", "moved or copied")
    assert "deploy/prod/db.yaml: document 0: the signature by 'alice' does not verify" in srepo.run("check").stdout
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
    srepo.ok("set", "deploy/prod/db.yaml", "stringData.password", "--sign-with", alice, stdin="newer-CANARY\n")
    srepo.ok("check")
    r = srepo.ok("set", "deploy/prod/db.yaml", "stringData.password", "--drop-signature", stdin="new-CANARY\n")
    assert "dropped the signature of document 0" in r.stderr and "signature:" not in f.read_text()
    # Once dropped, its other values are vouched for by nobody: signing them now is refused.
    dropped = f.read_bytes()
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.password", "--sign-with", alice, stdin="newest-CANARY\n")
    assert_clean_failure(r, "deploy/prod/db.yaml", "refusing to sign", "document 0 is not signed", "e.g. ")
    assert f.read_bytes() == dropped
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.x", "--sign-with", alice, "--drop-signature", stdin="v")
    assert_clean_failure(r, "exclude each other", code=2)


def test_sign_with_key_not_allowed_or_unsafe(srepo: Repo, tmp_path: Path) -> None:
    srepo.write("deploy/staging/db.yaml", SECRET)
    before = srepo.snapshot()
    r = srepo.run("seal", "deploy/staging/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    assert_clean_failure(r, "not an allowed signer of staging", "sealer signers add staging", code=2)
    assert srepo.snapshot() == before
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


# --- a signature names its file -----------------------------------------------------------------


def test_a_signed_document_copied_to_another_file_is_refused(srepo: Repo, tmp_path: Path) -> None:
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    srepo.ok("check")
    prod = str(srepo.keys["prod"])
    (srepo.root / "deploy" / "prod" / "db2.yaml").write_bytes(f.read_bytes())
    r = srepo.run("unseal", "deploy/prod/db2.yaml", "-i", prod)
    assert_clean_failure(r, "deploy/prod/db2.yaml", "document 0", "does not verify", "moved or copied")
    assert r.stdout == ""
    r = srepo.run("check", "--output", "json")
    problems = json.loads(r.stdout)["problems"]
    assert r.returncode == 1 and [(p["file"], p["code"]) for p in problems] == [
        ("deploy/prod/db2.yaml", "bad-signature")
    ]
    # Moved, not copied: the same.
    (srepo.root / "deploy" / "prod" / "db2.yaml").unlink()
    sub = srepo.root / "deploy" / "prod" / "old"
    sub.mkdir()
    f.rename(sub / "db.yaml")
    assert_clean_failure(srepo.run("unseal", "deploy/prod/old/db.yaml", "-i", prod), "does not verify")
    # Where it was signed it still verifies, however the path is given.
    (sub / "db.yaml").rename(f)
    srepo.ok("unseal", "deploy/prod/db.yaml", "-i", prod)
    srepo.ok("unseal", "prod/db.yaml", "-i", prod, cwd=srepo.root / "deploy")
    srepo.ok("unseal", str(f), "-i", prod, cwd=tmp_path)
    srepo.ok("check", cwd=srepo.root / "deploy")


def test_a_signed_document_restored_from_history_into_a_new_file_is_refused(srepo: Repo) -> None:
    alice = str(srepo.keys["alice"])
    srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    srepo.git_init(commit="db")
    srepo.ok("set", "deploy/prod/db.yaml", "stringData.password", "--sign-with", alice, stdin="rotated-CANARY\n")
    srepo.git("commit", "-q", "-am", "rotate the password")
    old = srepo.git("show", "HEAD~1:deploy/prod/db.yaml").stdout
    (srepo.root / "deploy" / "prod" / "db2.yaml").write_text(old)  # the old password, back under a new name
    r = srepo.run("unseal", "deploy/prod/db2.yaml", "-i", str(srepo.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/db2.yaml", "does not verify", "moved or copied")
    r = srepo.run("check")
    assert (
        r.returncode == 1 and "deploy/prod/db2.yaml: document 0: the signature by 'alice' does not verify" in r.stdout
    )


def test_unquoting_a_signed_value_is_refused_reformatting_is_not(srepo: Repo) -> None:
    text = SECRET.replace("  namespace: shop\n", '  namespace: shop\n  labels:\n    audit: "off"\n    mode: "0777"\n')
    f = srepo.write("deploy/prod/db.yaml", text)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", str(srepo.keys["alice"]))
    signed = f.read_text()
    prod = str(srepo.keys["prod"])
    for old, new in (('audit: "off"', "audit: off"), ('mode: "0777"', "mode: 0777")):
        f.write_text(signed.replace(old, new))
        r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", prod)
        assert_clean_failure(r, "deploy/prod/db.yaml", "document 0", "does not verify")
        assert "bad-signature" in srepo.run("check", "--output", "json").stdout
    # Indentation, comments, key order and the choice of quotes are formatting.
    lines = signed.splitlines(keepends=True)
    at = lines.index("metadata:\n")
    metadata = ["metadata:  # reviewed\n", "   namespace: shop\n", "   name: db\n", "   labels:\n"]
    metadata += ["        mode: '0777'\n", "        audit: 'off'\n"]
    reformatted = "".join([*lines[:at], *metadata, *lines[at + 6 :]])
    assert reformatted != signed and "name: db" in reformatted
    f.write_text(reformatted)
    srepo.ok("check")
    assert "pw-CANARY-7f3a9" in srepo.ok("unseal", "deploy/prod/db.yaml", "-i", prod).stdout


# --- --sign-with vouches only for what it may -----------------------------------------------------


def _foreign_token(srepo: Repo, path: str, value: str) -> str:
    """A token for SECRET's document at `path`, sealed by anyone with prod's public key (no signer)."""
    other = srepo.write("deploy/prod/evil.yaml", SECRET)
    srepo.ok("set", "deploy/prod/evil.yaml", path, "--document", "0", stdin=value + "\n")
    key = path.split(".", 1)[1]
    line = next(ln for ln in other.read_text().splitlines() if ln.startswith(f"  {key}: "))
    other.unlink()
    token = line.split(": ", 1)[1].strip('"')
    assert token.startswith("ENC[")
    return token


def _tampered(srepo: Repo, signed: str, how: str) -> str:
    if how == "token-replaced":
        evil = _foreign_token(srepo, "stringData.password", "evil-CANARY")
        old = next(ln for ln in signed.splitlines() if ln.startswith("  password: "))
        return signed.replace(old, f"  password: {evil}")
    if how == "token-added":
        evil = _foreign_token(srepo, "stringData.extra", "evil-CANARY")
        return signed.replace("stringData:\n", f"stringData:\n  extra: {evil}\n")
    assert how == "token-edited"
    old = next(ln for ln in signed.splitlines() if ln.startswith("  password: "))
    i = old.rindex("]") - 8  # in the ciphertext, not in the header's hints (which seal checks itself)
    return signed.replace(old, old[:i] + ("A" if old[i] != "A" else "B") + old[i + 1 :])


TAMPERING = ["token-replaced", "token-added", "token-edited"]


@pytest.mark.parametrize("how", TAMPERING)
def test_reseal_sign_with_refuses_a_tampered_document(srepo: Repo, tmp_path: Path, how: str) -> None:
    """The attack: a developer changes a token of a signed prod file; the custodian re-seals the
    repository with the signer key for a routine rotation. The tampered file is refused and left
    as it is, and so is every other file (nothing of the run is written)."""
    alice = str(srepo.keys["alice"])
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    g = srepo.write("deploy/prod/app.yaml", SECRET.replace("name: db", "name: app"))
    srepo.ok("seal", "deploy/prod/db.yaml", "deploy/prod/app.yaml", "--sign-with", alice)
    f.write_text(_tampered(srepo, f.read_text(), how))
    srepo.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod2.txt"))
    before = srepo.snapshot()
    r = srepo.run("reseal", "--env", "prod", "-i", str(srepo.keys["prod"]), "--sign-with", alice)
    assert_clean_failure(r, "deploy/prod/db.yaml", "document 0", "refusing to sign", "does not verify")
    assert srepo.snapshot() == before
    assert "app.yaml" not in r.stderr and g.read_bytes() == before["deploy/prod/app.yaml"]


@pytest.mark.parametrize("how", TAMPERING)
def test_seal_and_set_sign_with_refuse_a_tampered_document(srepo: Repo, how: str) -> None:
    alice = str(srepo.keys["alice"])
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    f.write_text(_tampered(srepo, f.read_text(), how))
    before = srepo.snapshot()
    r = srepo.run("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    assert_clean_failure(r, "deploy/prod/db.yaml", "document 0", "refusing to sign", "does not verify")
    assert srepo.snapshot() == before
    # sealer set on another value of the tampered document: the same.
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.username", "--sign-with", alice, stdin="app2\n")
    assert_clean_failure(r, "deploy/prod/db.yaml", "document 0", "refusing to sign", "does not verify")
    assert srepo.snapshot() == before


def test_sign_with_refuses_someone_elses_unsigned_tokens(srepo: Repo, tmp_path: Path) -> None:
    alice = str(srepo.keys["alice"])
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml")  # unsigned: anyone with the public key may have sealed it
    srepo.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod2.txt"))
    before = srepo.snapshot()
    for args in (
        ("reseal", "--env", "prod", "-i", str(srepo.keys["prod"]), "--sign-with", alice),
        ("seal", "deploy/prod/db.yaml", "--sign-with", alice),
    ):
        r = srepo.run(*args)
        assert_clean_failure(r, "deploy/prod/db.yaml", "document 0 is not signed", "did not seal", "someone else")
        assert srepo.snapshot() == before
    r = srepo.run("set", "deploy/prod/db.yaml", "stringData.password", "--sign-with", alice, stdin="x-CANARY\n")
    assert_clean_failure(r, "deploy/prod/db.yaml", "document 0 is not signed")
    assert srepo.snapshot() == before
    assert "signature:" not in f.read_text()


def test_sign_with_signs_new_plaintext_in_a_signed_document(srepo: Repo, tmp_path: Path) -> None:
    """What the signer seals from plaintext in this run is its own: new values added to a signed
    document, sealed and signed in one run."""
    alice = str(srepo.keys["alice"])
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    f.write_text(f.read_text().replace("stringData:\n", "stringData:\n  api_key: key-CANARY\n  more:   x\n"))
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", alice)
    srepo.ok("check")
    out = srepo.ok("unseal", "deploy/prod/db.yaml", "-i", str(srepo.keys["prod"]), "--format", "json").stdout
    assert "key-CANARY" in out and "pw-CANARY-7f3a9" in out
    # Not from stdin: there is no path to sign.
    r = srepo.run("seal", "-", "--env", "prod", "--sign-with", alice, stdin=SECRET)
    assert_clean_failure(r, "stdin cannot be signed", code=2)


def test_reseal_sign_with_resigns_an_untampered_repository(srepo: Repo, tmp_path: Path) -> None:
    alice = str(srepo.keys["alice"])
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    g = srepo.write("deploy/prod/app.yaml", SECRET.replace("name: db", "name: app"))
    srepo.ok("seal", "deploy/prod/db.yaml", "deploy/prod/app.yaml", "--sign-with", alice)
    old_sigs = [ln for h in (f, g) for ln in h.read_text().splitlines() if ln.startswith("    sig: ")]
    srepo.ok("keys", "rotate", "prod", "--out", str(tmp_path / "keys" / "prod2.txt"))
    srepo.ok("reseal", "--env", "prod", "-i", str(srepo.keys["prod"]), "--sign-with", alice, "-j", "2")
    new_sigs = [ln for h in (f, g) for ln in h.read_text().splitlines() if ln.startswith("    sig: ")]
    assert len(new_sigs) == 2 and not set(new_sigs) & set(old_sigs)
    srepo.ok("check", "-i", str(tmp_path / "keys" / "prod2.txt"))


# --- old signatures ------------------------------------------------------------------------------


def _v1_signed(text: str, key: SignerKey, name: str) -> str:
    """Re-sign a signed document's content with the old sealer.sig.v1 message, written out here
    from the previous spec (no path, no scalar styles, no collection tags)."""
    import base64

    doc = load(text, "x").docs[0]
    assert doc.meta is not None

    def node(n: object) -> bytes:
        n_: Any = n
        if n_.id == "scalar":
            return b"s" + _lp(str(n_.tag).encode()) + _lp(str(n_.value).encode())
        if n_.id == "sequence":
            return b"l" + len(n_.value).to_bytes(4, "big") + b"".join(node(v) for v in n_.value)
        entries = sorted(node(k) + node(v) for k, v in n_.value)
        return b"m" + len(entries).to_bytes(4, "big") + b"".join(entries)

    entries = sorted(node(k) + node(v) for k, v in doc.root.value if k.value != "sealer")
    message = (
        b"sealer.sig.v1\x00"
        + b"".join(_lp(x.encode()) for x in (name, key.kid, "1", doc.meta.env, doc.meta.scope))
        + b"m"
        + len(entries).to_bytes(4, "big")
        + b"".join(entries)
    )
    sig = base64.urlsafe_b64encode(key.sign(message)).rstrip(b"=").decode()
    old = next(ln for ln in text.splitlines() if ln.startswith("    sig: "))
    return text.replace(old, f"    sig: {sig}")


def test_an_old_v1_signature_says_to_sign_again(srepo: Repo, tmp_path: Path, recipients: list[Recipient]) -> None:
    alice = SignerKey.generate()
    v1 = _v1_signed(_seal(SECRET, recipients, alice), alice, "alice")
    problems = _check(v1, _policy(("alice", alice), required=False))
    assert [e.code for e in problems] == ["old-signature"]
    assert "sealer.sig.v1" in str(problems[0]) and "--sign-with" in str(problems[0])
    # Through the CLI: check and unseal refuse it; seal --sign-with renews it.
    f = srepo.write("deploy/prod/db.yaml", SECRET)
    key = str(srepo.keys["alice"])
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", key)
    from sealer._signing import read_signer_file

    f.write_text(_v1_signed(f.read_text(), read_signer_file(key), "alice"))
    r = srepo.run("unseal", "deploy/prod/db.yaml", "-i", str(srepo.keys["prod"]))
    assert_clean_failure(r, "deploy/prod/db.yaml", "document 0", "old sealer.sig.v1 format", "seal FILE --sign-with")
    r = srepo.run("check", "--output", "json")
    assert r.returncode == 1 and [p["code"] for p in json.loads(r.stdout)["problems"]] == ["old-signature"]
    srepo.ok("seal", "deploy/prod/db.yaml", "--sign-with", key)
    srepo.ok("check")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
