"""docs/format.md is a contract: check its worked example with an implementation written here,
from the text alone (raw `cryptography` HPKE, hashlib, struct), not with sealer's own envelope code.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

SPEC = (Path(__file__).parent.parent / "docs" / "format.md").read_text()


def _field(label: str) -> str:
    m = re.search(rf"^{label}: ([0-9a-f]+)$", SPEC, re.M)
    assert m, label
    return m.group(1)


def _bech32_polymod(values: list[int]) -> int:
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (b >> i) & 1 else 0
    return chk


def _bech32_encode(hrp: str, data: bytes) -> str:
    acc = bits = 0
    words = []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append((acc >> bits) & 31)
    if bits:
        words.append((acc << (5 - bits)) & 31)
    expand = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    poly = _bech32_polymod([*expand, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    return hrp + "1" + "".join(charset[w] for w in words + checksum)


def _lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _path(*segs: str | int) -> bytes:
    out = b""
    for s in segs:
        if isinstance(s, int):
            out += b"i" + struct.pack(">I", s)
        else:
            out += b"k" + _lp(s.encode())
    return out


def _hint(label: str, value: bytes, n: int) -> bytes:
    return hashlib.sha256(b"sealer.v1 hint " + label.encode() + b"\x00" + value).digest()[:n]


SK = hashlib.sha256(b"sealer.v1 worked example").digest()
PRIV = x25519.X25519PrivateKey.from_private_bytes(SK)
RECIPIENT = _bech32_encode("age", PRIV.public_key().public_bytes_raw())
KID = hashlib.sha256(RECIPIENT.encode()).hexdigest()[:16]
TOKEN = re.search(r"^(ENC\[sealer\.v1,[^\]]+\])$", SPEC, re.M).group(1)  # type: ignore[union-attr]
PLAINTEXT = b"correct horse battery staple 123"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _context(header: bytes, *, env: str, scope: str, ns: str, name: str, path: bytes) -> bytes:
    return (
        b"sealer.v1\x00"
        + header
        + _lp(env.encode())
        + _lp(scope.encode())
        + _lp(ns.encode())
        + _lp(name.encode())
        + _lp(path)
        + _lp(KID.encode())
    )


def _blob() -> bytes:
    kid, b64 = TOKEN[len("ENC[sealer.v1,") : -1].split(",")
    assert kid == KID
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))


def test_spec_key_fields_match_independent_derivation() -> None:
    assert SK.hex() in SPEC
    assert f"recipient: `{RECIPIENT}`" in SPEC
    assert f"kid: `{KID}`" in SPEC


def test_spec_header_and_context_bytes() -> None:
    path = _path("stringData", "password")
    hints = (
        _hint("env", b"prod", 1)
        + _hint("scope", b"strict", 1)
        + _hint("namespace", b"payments", 1)
        + _hint("name", b"db", 1)
        + _hint("path", path, 2)
    )
    header = b"s" + (1764028800).to_bytes(5, "big") + hints
    assert header.hex() == _field("header")
    assert _blob()[:12] == header
    ctx = _context(header, env="prod", scope="strict", ns="payments", name="db", path=path)
    assert ctx.hex() == _field("context")


def test_spec_token_opens_with_raw_hpke() -> None:
    blob = _blob()
    info = bytes.fromhex(_field("context"))
    assert SUITE.decrypt(blob[12:], PRIV, info=info) == PLAINTEXT
    assert len(TOKEN) <= 160


@pytest.mark.parametrize(
    "moved",
    [
        {"path": _path("stringData", "username")},
        {"name": "db2"},
        {"env": "staging"},
        {"ns": "other"},
    ],
)
def test_spec_token_does_not_open_elsewhere(moved: dict[str, object]) -> None:
    place: dict[str, object] = {
        "env": "prod",
        "scope": "strict",
        "ns": "payments",
        "name": "db",
        "path": _path("stringData", "password"),
    }
    place.update(moved)
    blob = _blob()
    ctx = _context(blob[:12], **place)  # type: ignore[arg-type]
    with pytest.raises(InvalidTag):
        SUITE.decrypt(blob[12:], PRIV, info=ctx)


def test_sealer_opens_spec_token_and_names_moves() -> None:
    """sealer's own reader agrees with the spec's example (and its move diagnosis)."""
    from sealer._envelope import unseal
    from sealer._format import Context, parse_token
    from sealer._keys import X25519Identity
    from sealer.errors import UnsealError

    ident = X25519Identity(PRIV)
    tok = parse_token(TOKEN)
    ctx = Context("prod", "strict", "payments", "db", ("stringData", "password"))
    assert unseal(tok, ctx, {KID: ident}.get, where="spec") == PLAINTEXT
    moved = Context("prod", "strict", "payments", "db2", ("stringData", "password"))
    with pytest.raises(UnsealError, match="name"):
        unseal(tok, moved, {KID: ident}.get, where="spec")
