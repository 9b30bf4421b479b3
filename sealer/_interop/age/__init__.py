"""age v1 files (https://age-encryption.org/v1, C2SP `age.md`): X25519 and scrypt recipients, ASCII
armor, the STREAM payload.

Why here: SOPS wraps its data keys in armored age files, passphrase-protected identity files are age
scrypt files (so `age -d` opens them too), and the DESIGN promises that sealer keys work with the
`age` CLI. Every primitive comes from `cryptography` (X25519, HKDF-SHA256, HMAC-SHA256, scrypt,
ChaCha20-Poly1305); this package only composes them as the spec says.

Shape, after FiloSottile/age: a recipient wraps a file key into stanzas, an identity unwraps one
stanza; `encrypt` and `decrypt` work over any objects with those one-method interfaces.

Release rule: `decrypt` returns the plaintext only once the whole file has verified (header MAC and
every payload chunk, through the final one): nothing partial ever leaves it. `iter_decrypt` follows
Go age's streaming rule instead (each authenticated chunk is released at once) for callers that need
to stream large files and can discard output on a later error.

Errors are typed after the age testkit's classes (no match, header, HMAC, payload, armor). Their
messages never contain key material, passphrases or plaintext.

The modules, one job each: `_errors` (the error classes), `_format` (header, stanzas and armor,
bytes only), `_primitives` (HKDF, the zero-nonce AEAD, header MAC and payload key), `_recipients`
(X25519 and scrypt stanzas, sealer keys as age keys, finding the file key) and `_stream` (the
payload chunks). This module puts them together: encrypt, decrypt and passphrase-protected
identity files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._errors import AgeArmorError, AgeError, AgeHeaderError, AgeHMACError, AgeNoMatchError, AgePayloadError
from ._format import (
    ARMOR_BEGIN,
    ARMOR_END,
    VERSION_LINE,
    Stanza,
    armor,
    dearmor,
    encode_b64,
    is_age_file,
    is_armored,
    marshal_stanza,
    parse_header,
)
from ._primitives import header_mac, payload_key
from ._recipients import (
    DEFAULT_WORK_FACTOR,
    FILE_KEY_SIZE,
    MAX_WORK_FACTOR,
    AgeIdentity,
    AgeRecipient,
    IdentityLike,
    RecipientLike,
    ScryptIdentity,
    ScryptRecipient,
    X25519AgeIdentity,
    X25519AgeRecipient,
    as_recipient,
    unwrap_file_key,
    usable_identities,
)
from ._stream import CHUNK_SIZE as CHUNK_SIZE  # importable as before, though not in __all__
from ._stream import open_chunks, seal_chunks

__all__ = [
    "ARMOR_BEGIN",
    "ARMOR_END",
    "DEFAULT_WORK_FACTOR",
    "MAX_WORK_FACTOR",
    "AgeArmorError",
    "AgeError",
    "AgeHMACError",
    "AgeHeaderError",
    "AgeIdentity",
    "AgeNoMatchError",
    "AgePayloadError",
    "AgeRecipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519AgeIdentity",
    "X25519AgeRecipient",
    "armor",
    "dearmor",
    "decrypt",
    "decrypt_identity_file",
    "encrypt",
    "encrypt_identity_file",
    "is_age_file",
    "is_armored",
    "iter_decrypt",
]

_armor_func = armor  # `encrypt` takes a keyword named `armor`


def encrypt(plaintext: bytes, recipients: Sequence[RecipientLike], *, armor: bool = False) -> bytes:
    """Encrypt to every recipient (`age1…` text, sealer X25519 keys, age recipients, or one
    ScryptRecipient alone). Returns a binary age file, or an armored one with `armor=True`."""
    wrapped = [as_recipient(r) for r in recipients]
    if not wrapped:
        raise AgeError("no recipients to encrypt to")
    if any(isinstance(r, ScryptRecipient) for r in wrapped) and len(wrapped) != 1:
        raise AgeError("a passphrase must be the only recipient of a file")
    file_key = os.urandom(FILE_KEY_SIZE)
    stanzas = [s for r in wrapped for s in r.wrap(file_key)]
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise AgeError("a passphrase must be the only recipient of a file")
    header = VERSION_LINE + b"".join(marshal_stanza(s) for s in stanzas) + b"---"
    mac = header_mac(file_key, header).finalize()
    out = bytearray(header + b" " + encode_b64(mac).encode("ascii") + b"\n")
    nonce = os.urandom(16)
    out += nonce
    out += seal_chunks(payload_key(file_key, nonce), plaintext)
    return _armor_func(bytes(out)) if armor else bytes(out)


def _open_header(
    data: bytes, identities: Sequence[IdentityLike], armored: bool | None, source: str | None
) -> tuple[ChaCha20Poly1305, memoryview]:
    """Parse, unwrap, verify the MAC; return the payload key and the payload after its nonce."""
    try:
        if armored or (armored is None and is_armored(data)):
            data = dearmor(data)
        header = parse_header(data)
        ids = usable_identities(identities)
        if any(s.type == "scrypt" for s in header.stanzas) and len(header.stanzas) != 1:
            raise AgeHeaderError("an scrypt (passphrase) stanza must be the only stanza of the file")
        file_key = unwrap_file_key(header.stanzas, ids)
        try:
            header_mac(file_key, header.mac_input).verify(header.mac)
        except InvalidSignature:
            raise AgeHMACError("the header MAC does not match: the header was altered") from None
        nonce = data[header.payload_offset : header.payload_offset + 16]
        if len(nonce) != 16:
            raise AgeHeaderError("truncated file: the payload nonce is missing")
        return payload_key(file_key, nonce), memoryview(data)[header.payload_offset + 16 :]
    except AgeError as err:
        if source is not None and err.file is None:
            raise type(err)(str(err), file=source) from None
        raise


def iter_decrypt(
    data: bytes,
    identities: Sequence[IdentityLike],
    *,
    armored: bool | None = None,
    source: str | None = None,
) -> Iterator[bytes]:
    """Decrypt chunk by chunk, releasing each authenticated chunk at once (Go age's rule).

    The header is checked before this returns. A payload error is raised after the chunks before it
    were yielded: a caller that acts on output before the end must be able to discard it. Prefer
    `decrypt` for secrets.
    """
    aead, payload = _open_header(data, identities, armored, source)
    return open_chunks(aead, payload, source)


def decrypt(
    data: bytes,
    identities: Sequence[IdentityLike],
    *,
    armored: bool | None = None,
    source: str | None = None,
) -> bytes:
    """Decrypt a whole age file (binary, or armored: detected, or forced with `armored=`).

    Returns the plaintext only if everything verified; on any error nothing is returned. `source`
    names the file in error messages.
    """
    return b"".join(iter_decrypt(data, identities, armored=armored, source=source))


# --- passphrase-protected identity files -----------------------------------------------------------


def encrypt_identity_file(
    text: str, passphrase: str, *, work_factor: int = DEFAULT_WORK_FACTOR, armor: bool = False
) -> bytes:
    """Protect an identity file (age-keygen's text) with a passphrase, as `age -p` does, so that both
    `age -d` and sealer open it."""
    return encrypt(text.encode("utf-8"), [ScryptRecipient(passphrase, work_factor)], armor=armor)


def decrypt_identity_file(data: bytes, passphrase: str, *, source: str | None = None) -> str:
    """Open a passphrase-protected identity file; the text is returned for the identity-file parser."""
    if not is_age_file(data):
        raise AgeHeaderError("not a passphrase-protected identity file (not an age file)", file=source)
    plaintext = decrypt(data, [ScryptIdentity(passphrase)], source=source)
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise AgeError("the protected identity file does not hold text", file=source) from None
