"""tests/vectors/sealer/ against docs/format.md, for every recipient kind.

Each vector is opened twice: by sealer's public path (load a sealed file, unseal it), and by a
decryptor written here from the spec's text alone: the token grammar (§5), the context bytes (§3)
and the recipient kinds (§7), with RFC 9180 HPKE built from HMAC-SHA256 and ChaCha20-Poly1305 and
the KEM ids read from §7's table; `cryptography` only for X25519, ML-KEM-768, Ed25519 and SHA-3.
Its own HPKE then agrees too. Every private key in the vectors is a public test key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from test_format_spec import SPEC, _bech32_encode, _hint, _lp, _path

HERE = Path(__file__).parent / "vectors" / "sealer"
NAMES = ["mlkem768x25519", "mlkem768x25519-multi", "ssh-ed25519", "x25519", "x25519-expiry", "x25519-multi"]
# Token vectors; the signature vectors beside them have their own test (test_vectors_signature.py).
VECTORS = {p.stem: json.loads(p.read_text()) for p in sorted(HERE.glob("*.json")) if not p.stem.startswith("signature")}
CASES = [(name, i) for name in NAMES for i in range(len(VECTORS[name]["recipients"]))]


def _vector_ids(case: tuple[str, int]) -> str:
    return f"{case[0]}-key{case[1]}"


# --- what §7 says, read from its table ----------------------------------------------------------


def _kinds_table() -> dict[str, dict[str, int]]:
    """`| kind | recipient | KEM (id) | KDF (id) | AEAD (id) | enc | stanza |` rows of §7."""
    section = SPEC[SPEC.index("## 7. Recipient kinds") :]
    rows = {}
    for m in re.finditer(r"^\| `([a-z0-9-]+)` \|(.*)\|$", section, re.M):
        cells = [c.strip() for c in m.group(2).split("|")]
        ids = [int(re.search(r"\((0x[0-9A-Fa-f]{4})\)", c).group(1), 16) for c in cells[1:4]]  # type: ignore[union-attr]
        rows[m.group(1)] = {
            "kem": ids[0],
            "kdf": ids[1],
            "aead": ids[2],
            "enc": int(cells[4].split()[0]),
            "stanza": int(cells[5].split()[0]),
        }
    return rows


KINDS = _kinds_table()


def test_spec_lists_every_kind_with_its_suite() -> None:
    assert KINDS == {
        "x25519": {"kem": 0x0020, "kdf": 0x0001, "aead": 0x0003, "enc": 32, "stanza": 80},
        "mlkem768x25519": {"kem": 0x647A, "kdf": 0x0001, "aead": 0x0003, "enc": 1120, "stanza": 1168},
        "ssh-ed25519": {"kem": 0x0020, "kdf": 0x0001, "aead": 0x0003, "enc": 32, "stanza": 80},
    }
    assert "`5c2e2f2f5e5c`" in SPEC  # X-Wing's label
    assert "SHA-512(seed)[0:32]" in SPEC and "u = (1 + y) / (1 − y) mod 2^255 − 19" in SPEC


# --- RFC 9180 base mode, from HMAC-SHA256 and ChaCha20-Poly1305 ---------------------------------


def _expand(prk: bytes, info: bytes, n: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:n]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, b"HPKE-v1" + suite_id + label + ikm, hashlib.sha256).digest()


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
    return _expand(prk, struct.pack(">H", n) + b"HPKE-v1" + suite_id + label + info, n)


def _hpke_open(kind: str, shared_secret: bytes, info: bytes, ciphertext: bytes) -> bytes:
    """KeySchedule (mode_base, no PSK) then Open with sequence number 0, aad empty (§5, §7)."""
    k = KINDS[kind]
    assert (k["kdf"], k["aead"]) == (0x0001, 0x0003)  # HKDF-SHA256, ChaCha20-Poly1305: what is built here
    suite_id = b"HPKE" + struct.pack(">HHH", k["kem"], k["kdf"], k["aead"])
    context = (
        b"\x00"
        + _labeled_extract(suite_id, b"", b"psk_id_hash", b"")
        + _labeled_extract(suite_id, b"", b"info_hash", info)
    )
    secret = _labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = _labeled_expand(suite_id, secret, b"key", context, 32)
    nonce = _labeled_expand(suite_id, secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, b"")


def _dhkem_x25519(kem_id: int, sk: x25519.X25519PrivateKey, pk_r: bytes, enc: bytes) -> bytes:
    suite_id = b"KEM" + struct.pack(">H", kem_id)
    dh = sk.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    prk = _labeled_extract(suite_id, b"", b"eae_prk", dh)
    return _labeled_expand(suite_id, prk, b"shared_secret", enc + pk_r, 32)


# --- the keys of each kind, from §1 and §7 --------------------------------------------------------

P = 2**255 - 19


class Key:
    """One recipient of a vector, rebuilt from its `secret_hex` as §7 says, checked against the
    recipient, kid and identity texts of the vector."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.kind: str = entry["kind"]
        secret = bytes.fromhex(entry["secret_hex"])
        if self.kind == "x25519":
            self.sk = x25519.X25519PrivateKey.from_private_bytes(secret)
            self.pk = self.sk.public_key().public_bytes_raw()
            recipient = _bech32_encode("age", self.pk)
            identity = _bech32_encode("age-secret-key-", secret).upper()
        elif self.kind == "mlkem768x25519":
            e = hashlib.shake_256(secret).digest(96)
            self.dk = mlkem.MLKEM768PrivateKey.from_seed_bytes(e[:64])
            self.sk = x25519.X25519PrivateKey.from_private_bytes(e[64:])
            self.pk = self.sk.public_key().public_bytes_raw()
            pk_m = self.dk.public_key().public_bytes_raw()
            assert len(pk_m) == 1184
            recipient = _bech32_encode("age1pq", pk_m + self.pk)
            assert len(recipient) == 1959
            identity = _bech32_encode("age-secret-key-pq-", secret).upper()
        else:
            assert self.kind == "ssh-ed25519"
            ed_pk = ed25519.Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
            blob = _lp(b"ssh-ed25519") + _lp(ed_pk)
            recipient = "ssh-ed25519 " + base64.b64encode(blob).decode()
            y = int.from_bytes(ed_pk, "little") & ((1 << 255) - 1)
            self.pk = ((1 + y) * pow(1 - y, -1, P) % P).to_bytes(32, "little")
            self.sk = x25519.X25519PrivateKey.from_private_bytes(hashlib.sha512(secret).digest()[:32])
            assert self.sk.public_key().public_bytes_raw() == self.pk  # the two conversions agree
            # The identity is an OpenSSH key file holding this seed (read with cryptography, not sealer).
            held = load_ssh_private_key(entry["identity"].encode(), password=None)
            assert isinstance(held, ed25519.Ed25519PrivateKey)
            assert held.private_bytes_raw() == secret
            identity = entry["identity"]
            ssh_pub = held.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
            assert ssh_pub.split()[:2] == recipient.split()
        assert entry["recipient"] == recipient
        assert entry["identity"] == identity
        assert entry["kid"] == hashlib.sha256(recipient.encode()).hexdigest()[:16]
        label = re.fullmatch(r".* = SHA-256\('(.*)'\)", entry["secret_is"])
        assert label and entry["secret_hex"] == hashlib.sha256(label.group(1).encode()).hexdigest()

    def decap(self, enc: bytes) -> bytes:
        kem = KINDS[self.kind]["kem"]
        if self.kind != "mlkem768x25519":
            return _dhkem_x25519(kem, self.sk, self.pk, enc)
        ct_m, ct_x = enc[:1088], enc[1088:]
        ss_m = self.dk.decapsulate(ct_m)
        ss_x = self.sk.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
        return hashlib.sha3_256(ss_m + ss_x + ct_x + self.pk + bytes.fromhex("5c2e2f2f5e5c")).digest()

    def open(self, sealed: bytes, info: bytes) -> bytes:
        n = KINDS[self.kind]["enc"]
        return _hpke_open(self.kind, self.decap(sealed[:n]), info, sealed[n:])

    def open_with_cryptography(self, sealed: bytes, info: bytes) -> bytes:
        """The same, with cryptography's own HPKE and the suite §7 names."""
        if self.kind == "mlkem768x25519":
            suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
            return suite.decrypt(sealed, hpke.MLKEM768X25519PrivateKey(self.dk, self.sk), info=info)
        suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
        return suite.decrypt(sealed, self.sk, info=info)


# --- the token and its context, from §3 and §5 ---------------------------------------------------

TOKEN = re.compile(r"ENC\[sealer\.v1,([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")


def _parse(token: str) -> tuple[list[str], bytes, bytes]:
    m = TOKEN.fullmatch(token)
    assert m, token
    kids = m.group(1).split("+")
    blob = base64.urlsafe_b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4))
    assert base64.urlsafe_b64encode(blob).rstrip(b"=").decode() == m.group(2)  # canonical
    size = 17 if blob[:1] in (b"S", b"B", b"I", b"F", b"T", b"D") else 12  # an upper-case type: + expires_at
    return kids, blob[:size], blob[size:]


def _b64(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


def _context(v: dict[str, Any], header: bytes, kids: list[str]) -> bytes:
    c = v["context"]
    return (
        b"sealer.v1\x00"
        + header
        + _lp(c["env"].encode())
        + _lp(c["scope"].encode())
        + _lp(c["namespace"].encode())
        + _lp(c["name"].encode())
        + _lp(_path(*c["path"]))
        + _lp("+".join(kids).encode())
    )


def _stanzas(kids: list[str], payload: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(each stanza s, the length-prefixed stanzas as they are, the body)."""
    rest, out = payload, []
    for _ in kids:
        (n,) = struct.unpack(">H", rest[:2])
        out.append(rest[2 : 2 + n])
        rest = rest[2 + n :]
    return out, payload[: len(payload) - len(rest)], rest


def _open(v: dict[str, Any], which: int, *, opener: str = "open", payload: bytes | None = None) -> bytes:
    kids, header, own_payload = _parse(v["token"])
    payload = own_payload if payload is None else payload
    key = Key(v["recipients"][which])
    assert kids[which] == v["recipients"][which]["kid"]
    info = _context(v, header, kids)
    open_ = getattr(key, opener)
    if len(kids) == 1:
        return bytes(open_(payload, info))
    stanzas, prefixed, body = _stanzas(kids, payload)
    data_key = open_(stanzas[which], info)
    assert len(data_key) == 32
    return ChaCha20Poly1305(data_key).decrypt(bytes(12), body, info + prefixed)


# --- the tests ------------------------------------------------------------------------------------


def test_every_kind_has_vectors_and_they_say_they_are_public_test_keys() -> None:
    assert sorted(VECTORS) == NAMES
    assert {r["kind"] for v in VECTORS.values() for r in v["recipients"]} == set(KINDS)
    readme = (HERE / "README.md").read_text()
    assert "public test key that protects nothing" in readme
    for name, v in VECTORS.items():
        assert v["name"] == name
        assert v["warning"].startswith("PUBLIC TEST KEYS") and "protects nothing" in v["warning"]


@pytest.mark.parametrize("name", NAMES)
def test_header_and_context_bytes_follow_the_spec(name: str) -> None:
    v = VECTORS[name]
    c = v["context"]
    kids, header, _payload = _parse(v["token"])
    assert kids == [r["kid"] for r in v["recipients"]]
    path = _path(*c["path"])
    hints = (
        _hint("env", c["env"].encode(), 1)
        + _hint("scope", c["scope"].encode(), 1)
        + _hint("namespace", c["namespace"].encode(), 1)
        + _hint("name", c["name"].encode(), 1)
        + _hint("path", path, 2)
    )
    if "expires_at" in v:  # §5: the type byte in upper case, then the expiry after the seal time
        expiry = v["expires_at"].to_bytes(5, "big")
        assert v["expires_at"] > v["sealed_at"]
        assert header == v["type"].upper().encode() + v["sealed_at"].to_bytes(5, "big") + expiry + hints
    else:
        assert header == v["type"].encode() + v["sealed_at"].to_bytes(5, "big") + hints
    assert header.hex() == v["header_hex"]
    assert _context(v, header, kids).hex() == v["context_hex"]
    assert f": {v['token']}\n" in v["document"]


@pytest.mark.parametrize("name", NAMES)
def test_payload_layout_and_lengths_follow_section_7(name: str) -> None:
    v = VECTORS[name]
    kids, _header, payload = _parse(v["token"])
    kinds = [r["kind"] for r in v["recipients"]]
    n = len(bytes.fromhex(v["plaintext_hex"]))
    if len(kids) == 1:
        assert len(payload) == KINDS[kinds[0]]["enc"] + n + 16
        return
    stanzas, prefixed, body = _stanzas(kids, payload)
    assert [len(s) for s in stanzas] == [KINDS[k]["stanza"] for k in kinds]
    assert [len(s) for s in stanzas] == [KINDS[k]["enc"] + 32 + 16 for k in kinds]
    assert len(prefixed) == sum(2 + len(s) for s in stanzas)
    assert len(body) == n + 16


@pytest.mark.parametrize("case", CASES, ids=_vector_ids)
def test_opens_from_the_spec_alone(case: tuple[str, int]) -> None:
    name, which = case
    v = VECTORS[name]
    assert _open(v, which) == bytes.fromhex(v["plaintext_hex"]) == v["plaintext"].encode()


@pytest.mark.parametrize("case", CASES, ids=_vector_ids)
def test_cryptography_hpke_with_the_named_suite_agrees(case: tuple[str, int]) -> None:
    name, which = case
    v = VECTORS[name]
    assert _open(v, which, opener="open_with_cryptography") == v["plaintext"].encode()


@pytest.mark.parametrize("name", ["x25519-multi", "mlkem768x25519-multi"])
def test_an_edit_to_another_recipients_stanza_is_detected(name: str) -> None:
    """§5: the body's associated data covers every stanza, so the holder of key 0 notices an edit
    to key 1's stanza although its own stanza still opens."""
    v = VECTORS[name]
    _kids, _header, payload = _parse(v["token"])
    edited = bytearray(payload)
    edited[2 + KINDS[v["recipients"][0]["kind"]]["stanza"] + 2 + 40] ^= 1  # inside stanza 1
    with pytest.raises(InvalidTag):
        _open(v, 0, payload=bytes(edited))


@pytest.mark.parametrize("name", NAMES)
def test_a_moved_value_does_not_open(name: str) -> None:
    v = json.loads(json.dumps(VECTORS[name]))
    v["context"]["env"] = "staging"
    with pytest.raises(InvalidTag):
        _open(v, 0)


def _opens(token: str, v: dict[str, Any]) -> bool:
    """Does `token`, in the place of vector `v`, open with its key from the spec alone?"""
    try:
        _open({**v, "token": token}, 0)
    except InvalidTag:
        return False
    return True


def test_the_expiry_is_bound_edited_moved_or_stripped_it_does_not_open() -> None:
    """§5: the expiry is header bytes, and the header is in the context, so the expiry cannot be
    pushed back, copied to another value or removed: each is an altered token."""
    v = VECTORS["x25519-expiry"]
    kids, header, payload = _parse(v["token"])
    prefix = f"ENC[sealer.v1,{'+'.join(kids)},"
    assert _opens(v["token"], v)
    later = header[:6] + (v["expires_at"] + 86400 * 365).to_bytes(5, "big") + header[11:]
    assert not _opens(prefix + _b64(later + payload) + "]", v)  # a year added
    stripped = header[:1].lower() + header[1:6] + header[11:]
    assert len(stripped) == 12 and not _opens(prefix + _b64(stripped + payload) + "]", v)  # removed
    # Another value's expiry moved onto the vector of x25519.json (same place, its own key): no.
    plain = VECTORS["x25519"]
    p_kids, p_header, p_payload = _parse(plain["token"])
    grafted = p_header[:1].upper() + p_header[1:6] + header[6:11] + p_header[6:]
    assert _opens(plain["token"], plain)
    assert not _opens(f"ENC[sealer.v1,{p_kids[0]}," + _b64(grafted + p_payload) + "]", plain)


def test_sealer_reads_the_expiry_and_refuses_an_edited_one_as_altered() -> None:
    """sealer's public path agrees: before its expiry the vector opens; after it, without an
    environment's rules (`UNCHECKED`), it opens with a warning (under rules it is refused: see
    test_expiry.py); with its expiry edited it does not open, as altered, not as expired."""
    from sealer._document import load
    from sealer._keys import parse_identity
    from sealer._unseal import UNCHECKED, unseal_file
    from sealer.errors import Expired, UnsealError

    v = VECTORS["x25519-expiry"]
    identity = parse_identity(v["recipients"][0]["identity"])
    lookup = {identity.kid: identity}.get
    doc = v["document"]
    before = unseal_file(load(doc, "v.yaml"), lookup, rules=UNCHECKED, now=v["expires_at"] - 1)
    assert v["plaintext"] in before.text and before.warnings == []
    after = unseal_file(load(doc, "v.yaml"), lookup, rules=UNCHECKED, now=v["expires_at"])  # no rules: a warning
    assert v["plaintext"] in after.text and "expired at 2026-11-25T00:00:00Z" in after.warnings[0]
    kids, header, payload = _parse(v["token"])
    later = header[:6] + (v["expires_at"] + 86400).to_bytes(5, "big") + header[11:]
    edited = doc.replace(v["token"], f"ENC[sealer.v1,{kids[0]}," + _b64(later + payload) + "]")
    with pytest.raises(UnsealError, match="expiry") as err:
        unseal_file(load(edited, "v.yaml"), lookup, rules=UNCHECKED, now=v["expires_at"] - 1)
    assert not isinstance(err.value, Expired)


@pytest.mark.parametrize("case", CASES, ids=_vector_ids)
def test_sealer_opens_every_vector_through_its_public_path(case: tuple[str, int]) -> None:
    from sealer._document import load
    from sealer._keys import parse_identity
    from sealer._unseal import UNCHECKED, unseal_file

    name, which = case
    v = VECTORS[name]
    entry = v["recipients"][which]
    identity = parse_identity(entry["identity"])
    assert identity.kid == entry["kid"] and identity.recipient.encode() == entry["recipient"]
    assert identity.recipient.kind == entry["kind"]
    lookup = {identity.kid: identity}.get
    opened = unseal_file(load(v["document"], f"{name}.yaml"), lookup, rules=UNCHECKED, now=v["sealed_at"])
    value: Any = opened.docs[0].content
    for segment in v["context"]["path"]:
        value = value[segment]
    assert value == v["plaintext"]
    assert opened.kids == tuple(sorted(r["kid"] for r in v["recipients"]))
