"""Keys: Bech32, age-compatible encodings, HPKE seal/open, and interop with the real age binaries."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sealer._format import bech32 as _bech32
from sealer._identities import read_identity_file, write_identity_file
from sealer._keys import (
    X25519Identity,
    X25519Recipient,
    generate_identity,
    kid_of,
    parse_identity,
    parse_recipient,
)
from sealer.errors import KeyFormatError, SealerError, UnsealError

# --- Bech32: BIP-173 test vectors ------------------------------------------------------------------

BIP173_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

BIP173_INVALID = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    "pzry9x0s0muk",  # no separator character
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with upper-case form of HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]

# BIP-173 lists this as invalid only for exceeding 90 characters; age lifted that limit (age issue 453),
# and so do we, so that every key age accepts, we accept.
BIP173_TOO_LONG = "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx"

# age's own long vector (internal/bech32 tests): 1650 characters.
AGE_LONG_VECTOR = "long1" + "0pu8s7rc" * 204 + "0pu8s7qfcsvr0"


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bip173_valid_vectors_decode_and_reencode(text: str) -> None:
    hrp, words = _bech32.decode_words(text)
    assert hrp == text[: text.rfind("1")].lower()
    assert _bech32.encode_words(hrp, words) == text.lower()
    if hrp.upper() != hrp:  # an HRP without letters ("1", "?") has no upper-case form to select
        assert _bech32.encode_words(hrp.upper(), words) == text.upper()
    assert _bech32.decode_words(text.upper()) == (hrp, words)
    # The byte-level decoder (what keys use) accepts them too and round-trips.
    hrp8, data = _bech32.decode(text)
    assert _bech32.encode(hrp8, data) == text.lower()


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bip173_valid_vectors_detect_a_changed_character(text: str) -> None:
    pos = text.rfind("1") + 1
    flipped = text[:pos] + chr(ord(text[pos]) ^ 1) + text[pos + 1 :]
    with pytest.raises(ValueError):
        _bech32.decode_words(flipped)


@pytest.mark.parametrize("text", BIP173_INVALID)
def test_bip173_invalid_vectors_fail(text: str) -> None:
    with pytest.raises(ValueError):
        _bech32.decode_words(text)
    with pytest.raises(ValueError):
        _bech32.decode(text)


def test_length_limit_is_lifted_like_age() -> None:
    assert _bech32.decode_words(BIP173_TOO_LONG)[0].startswith("an84")
    hrp, data = _bech32.decode(AGE_LONG_VECTOR)
    assert hrp == "long"
    assert _bech32.encode(hrp, data) == AGE_LONG_VECTOR
    assert _bech32.decode(_bech32.encode("x", bytes(range(256)) * 4)) == ("x", bytes(range(256)) * 4)


@pytest.mark.parametrize("text", ["A12uEL5L", "a12UEL5L", "Abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"])
def test_mixed_case_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="mixed case"):
        _bech32.decode(text)


def test_hrp_is_returned_lower_case() -> None:
    identity = generate_identity()
    assert _bech32.decode(identity.encode())[0] == "age-secret-key-"


def test_noncanonical_padding_is_rejected() -> None:
    # One byte is 8 bits = two 5-bit words with 2 padding bits; set a padding bit.
    hrp, words = _bech32.decode_words(_bech32.encode("age", b"\x00"))
    with pytest.raises(ValueError, match="padding"):
        _bech32.decode(_bech32.encode_words(hrp, [words[0], words[1] | 1]))


def test_bech32_errors_never_echo_the_input() -> None:
    secret = generate_identity().encode()
    broken = secret[:-1] + ("Q" if secret[-1] != "Q" else "P")
    for text in (broken, broken.lower() + "X", broken + "\xff", secret.replace("1", "")):
        with pytest.raises(ValueError) as info:
            _bech32.decode(text)
        assert_no_secret(str(info.value), secret)


# --- encodings and kids ----------------------------------------------------------------------------


def test_encodings_have_the_age_shape() -> None:
    identity = generate_identity()
    assert re.fullmatch(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", identity.encode())
    assert re.fullmatch(r"age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}", identity.recipient.encode())
    assert identity.recipient.kind == "x25519"
    assert isinstance(identity.recipient, X25519Recipient)


def test_kid_is_first_8_bytes_of_sha256_of_the_recipient() -> None:
    identity = generate_identity()
    text = identity.recipient.encode()
    assert kid_of(text) == hashlib.sha256(text.encode("ascii")).hexdigest()[:16]
    assert re.fullmatch(r"[0-9a-f]{16}", identity.kid)
    assert identity.kid == identity.recipient.kid == kid_of(text) == parse_recipient(text).kid


def test_parse_round_trips() -> None:
    identity = generate_identity()
    again = parse_identity(identity.encode())
    assert again.encode() == identity.encode()
    assert again.recipient == identity.recipient
    assert parse_recipient(identity.recipient.encode()) == identity.recipient
    assert hash(parse_recipient(identity.recipient.encode())) == hash(identity.recipient)
    assert parse_identity("  " + identity.encode() + "\n").kid == identity.kid


def test_known_key_pair() -> None:
    # RFC 7748 section 6.1: Alice's private scalar and public key, in age's encoding.
    scalar = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    public = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    identity = parse_identity(_bech32.encode("AGE-SECRET-KEY-", scalar))
    assert identity.recipient.encode() == _bech32.encode("age", public)


def test_generated_identities_differ() -> None:
    assert len({generate_identity().encode() for _ in range(20)}) == 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected age1"),
        ("AGE1QQQQ", "expected age1"),
        ("age1pq1qqqqqqqqqq", "malformed age1pq recipient"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "malformed ssh-ed25519"),
        ("age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs0000000", "malformed"),
        (_bech32.encode("age", bytes(31)), "31 bytes"),
        (_bech32.encode("age", bytes(32)), "low-order"),
        (_bech32.encode("agf", bytes(range(1, 33))), "expected age1"),
    ],
)
def test_bad_recipients(text: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as info:
        parse_recipient(text)
    if len(text) > 10:
        assert text not in str(info.value)


def test_private_key_given_as_recipient_is_not_echoed() -> None:
    secret = generate_identity().encode()
    with pytest.raises(KeyFormatError, match="private key") as info:
        parse_recipient(secret)
    assert_no_secret(str(info.value), secret)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s[:-1] + ("Q" if s[-1] != "Q" else "P"), "checksum"),
        (lambda s: s.lower(), "upper case"),
        (lambda s: s[:20] + s[20:].lower(), "mixed case"),
        (lambda s: s.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-PQ-1"), "post-quantum"),
        (lambda s: s.replace("AGE-SECRET-KEY-1", "AGE-PLUGIN-FOO-1"), "plugin"),
        (lambda s: s.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-1Q"), "checksum"),
        (lambda s: s[:40], "malformed"),
        (lambda s: "x" + s, "expected AGE-SECRET-KEY-1"),
        (lambda s: _bech32.encode("AGE-SECRET-KEY-", bytes(33)), "33 bytes"),
    ],
)
def test_bad_identities_never_echo_the_key(mangle: Callable[[str], str], message: str) -> None:
    secret = generate_identity().encode()
    text = mangle(secret)
    with pytest.raises(KeyFormatError, match=message) as info:
        parse_identity(text)
    assert_no_secret(error_text(info.value), secret)
    assert text not in error_text(info.value)


def test_recipient_given_as_identity() -> None:
    with pytest.raises(KeyFormatError, match="recipient"):
        parse_identity(generate_identity().recipient.encode())


# --- seal / open -----------------------------------------------------------------------------------


def test_seal_open_round_trip() -> None:
    identity = generate_identity()
    for plaintext in (b"", b"x", b"s3cret" * 1000):
        sealed = identity.recipient.seal(plaintext, b"ctx")
        assert len(sealed) == 32 + len(plaintext) + 16  # enc || ciphertext || tag
        assert identity.open(sealed, b"ctx") == plaintext


def test_seal_is_randomised() -> None:
    recipient = generate_identity().recipient
    assert recipient.seal(b"same", b"i") != recipient.seal(b"same", b"i")


def test_seal_is_rfc9180_base_mode() -> None:
    """Open our output with HPKE written out by hand from RFC 9180 (the spec an independent decryptor
    would follow): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, mode_base, empty aad."""
    private = x25519.X25519PrivateKey.generate()
    identity = X25519Identity(private)
    info = b"sealer test info"
    sealed = identity.recipient.seal(b"hello hpke", info)
    assert rfc9180_open(private, sealed, info) == b"hello hpke"


def test_open_with_another_identity_fails() -> None:
    sealed = generate_identity().recipient.seal(b"secret", b"ctx")
    other = generate_identity()
    with pytest.raises(UnsealError) as info:
        other.open(sealed, b"ctx")
    assert str(info.value) == f"does not open with key {other.kid}"


def test_wrong_info_fails() -> None:
    identity = generate_identity()
    sealed = identity.recipient.seal(b"secret", b"env=prod/path=a")
    for info in (b"env=prod/path=b", b"env=prod/path=a\x00", b"", b"env=prod/path="):
        with pytest.raises(UnsealError, match=identity.kid):
            identity.open(sealed, info)


def test_every_flipped_byte_fails() -> None:
    identity = generate_identity()
    sealed = identity.recipient.seal(b"0123456789abcdef0123456789abcdef", b"ctx")
    for i in range(len(sealed)):
        for mask in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= mask
            with pytest.raises(UnsealError):
                identity.open(bytes(tampered), b"ctx")


@pytest.mark.parametrize("cut", [lambda s: s[:-1], lambda s: s + b"\x00", lambda s: s[:32], lambda s: b""])
def test_truncated_or_extended_fails(cut: Callable[[bytes], bytes]) -> None:
    identity = generate_identity()
    sealed = identity.recipient.seal(b"secret", b"ctx")
    with pytest.raises(UnsealError) as info:
        identity.open(cut(sealed), b"ctx")
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --- secret hygiene --------------------------------------------------------------------------------


def test_repr_and_str_of_identity_hide_the_secret() -> None:
    identity = generate_identity()
    secret = identity.encode()
    for text in (repr(identity), str(identity), f"{identity}", f"{identity!r}", repr([identity])):
        assert_no_secret(text, secret)
        assert identity.kid in text
    assert identity.recipient.encode() in repr(identity)
    assert repr(identity.recipient) == f"X25519Recipient({identity.recipient.encode()!r})"


# --- interop with the real age binaries ------------------------------------------------------------


def test_age_keygen_identity_parses_to_the_same_recipient(tmp_path: Path, require_tool: Callable[[str], str]) -> None:
    keygen = require_tool("age-keygen")
    key_file = tmp_path / "key.txt"
    subprocess.run([keygen, "-o", str(key_file)], check=True, capture_output=True)
    expected = subprocess.run([keygen, "-y", str(key_file)], check=True, capture_output=True, text=True)

    (identity,) = read_identity_file(key_file)
    assert identity.recipient.encode() == expected.stdout.strip()
    assert f"# public key: {identity.recipient.encode()}" in key_file.read_text()

    # Seal to the parsed recipient, open with the parsed identity; another identity cannot open it.
    recipient = parse_recipient(expected.stdout.strip())
    sealed = recipient.seal(b"interop", b"info")
    assert identity.open(sealed, b"info") == b"interop"
    with pytest.raises(UnsealError):
        generate_identity().open(sealed, b"info")


def test_our_identity_file_is_read_by_age_keygen(tmp_path: Path, require_tool: Callable[[str], str]) -> None:
    keygen = require_tool("age-keygen")
    identity = generate_identity()
    key_file = write_identity_file(tmp_path / "ours.txt", identity)
    out = subprocess.run([keygen, "-y", str(key_file)], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == identity.recipient.encode()


def test_age_encrypts_to_our_recipient_and_decrypts_with_our_identity_file(
    tmp_path: Path, require_tool: Callable[[str], str]
) -> None:
    age = require_tool("age")
    identity = generate_identity()
    key_file = write_identity_file(tmp_path / "ours.txt", identity)
    encrypted = subprocess.run(
        [age, "-r", identity.recipient.encode()], input=b"via age", check=True, capture_output=True
    ).stdout
    decrypted = subprocess.run(
        [age, "-d", "-i", str(key_file)], input=encrypted, check=True, capture_output=True
    ).stdout
    assert decrypted == b"via age"


# --- helpers ---------------------------------------------------------------------------------------


def error_text(err: BaseException) -> str:
    """Everything an error could show: str, repr, args, and its chained exceptions."""
    parts: list[str] = []
    seen: BaseException | None = err
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        if isinstance(seen, SealerError):
            parts += [str(seen.file), str(seen.hint)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def assert_no_secret(text: str, secret: str) -> None:
    """No part of a secret key's data shows up, in either case."""
    data = secret.split("1", 1)[1]
    hay = text.upper()
    assert secret.upper() not in hay
    for i in range(0, len(data) - 10):
        assert data[i : i + 10].upper() not in hay, "a fragment of the secret key leaked"


def rfc9180_open(private: x25519.X25519PrivateKey, sealed: bytes, info: bytes) -> bytes:
    def extract(salt: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt, ikm, hashlib.sha256).digest()

    def expand(prk: bytes, label_info: bytes, length: int) -> bytes:
        out, block, counter = b"", b"", 1
        while len(out) < length:
            block = hmac.new(prk, block + label_info + bytes([counter]), hashlib.sha256).digest()
            out += block
            counter += 1
        return out[:length]

    def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return extract(salt, b"HPKE-v1" + suite + label + ikm)

    def labeled_expand(suite: bytes, prk: bytes, label: bytes, ctx: bytes, length: int) -> bytes:
        return expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + ctx, length)

    kem_suite = b"KEM" + (0x0020).to_bytes(2, "big")
    enc, ciphertext = sealed[:32], sealed[32:]
    pk_rm = private.public_key().public_bytes_raw()
    dh = private.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    eae_prk = labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared_secret = labeled_expand(kem_suite, eae_prk, b"shared_secret", enc + pk_rm, 32)

    suite = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0003).to_bytes(2, "big")
    psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash  # mode_base
    secret = labeled_extract(suite, shared_secret, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", context, 32)
    nonce = labeled_expand(suite, secret, b"base_nonce", context, 12)  # sequence number 0
    return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, b"")
