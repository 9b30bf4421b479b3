"""One sealed value: kubeseal's hybrid encryption, RSA-OAEP (SHA-256) of a fresh AES-256 session key
under the place's label, then AES-GCM of the plaintext, and its inverse with every key given.

Why a module of its own: this is the only code that encrypts or decrypts, and the only place
that can prove why a value does not open (a key of another size, a label of another place, an
edited body) rather than guess; sealing and unsealing whole objects call into it. Only
`cryptography` does crypto here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._document import b64decode
from ._errors import (
    KEY_HINT,
    AlteredValue,
    ControllerKeyError,
    LabelMismatch,
    MalformedSealedSecret,
    NoKeyCouldDecrypt,
    TruncatedBlob,
    WrongKey,
)
from ._scopes import Place, place_from_label

_SESSION_KEY_BYTES = 32  # AES-256, as kubeseal writes; Go's aes.NewCipher would also take 16 or 24 on opening
_NONCE = bytes(12)  # every session key encrypts exactly one value
_TAG_BYTES = 16


def _oaep(label: bytes) -> padding.OAEP:
    # Go's rsa.EncryptOAEP uses one hash for both the OAEP digest and MGF1.
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def seal_value(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> str:
    """One sealed value, as kubeseal --raw prints it (HybridEncrypt, then standard base64)."""
    session_key = AESGCM.generate_key(bit_length=8 * _SESSION_KEY_BYTES)
    wrapped = public_key.encrypt(session_key, _oaep(label))
    body = AESGCM(session_key).encrypt(_NONCE, plaintext, None)
    return base64.b64encode(len(wrapped).to_bytes(2, "big") + wrapped + body).decode("ascii")


@dataclass(frozen=True)
class Blob:
    """A sealed value, split at its length prefix."""

    wrapped: bytes  # the RSA-OAEP ciphertext of the session key
    body: bytes  # AES-GCM ciphertext ‖ tag


def parse_blob(value: Any, where: str, source: str | None) -> Blob:
    """A value's two parts, or an error naming `where` when it is not one kubeseal could have written."""
    if not isinstance(value, str):
        raise MalformedSealedSecret(f"{where} is not a string", file=source)
    raw = b64decode(value)
    if raw is None:
        raise MalformedSealedSecret(f"{where} is not standard base64", file=source)
    if len(raw) < 2:
        raise TruncatedBlob(f"{where} is truncated: {len(raw)} byte(s), shorter than its length prefix", file=source)
    n = int.from_bytes(raw[:2], "big")
    if n == 0:
        raise MalformedSealedSecret(f"{where} announces an empty RSA part", file=source)
    if len(raw) < 2 + n + _TAG_BYTES:
        raise TruncatedBlob(
            f"{where} is truncated: {len(raw)} bytes, but its prefix announces a {n}-byte RSA part "
            f"and an AES-GCM part of at least {_TAG_BYTES} bytes",
            file=source,
            hint="copy the whole value again",
        )
    return Blob(raw[2 : 2 + n], raw[2 + n :])


class BodyFailed(Exception):
    """The session key unwrapped under the label, but the AES-GCM part did not authenticate."""


def attempt(blob: Blob, keys: Sequence[rsa.RSAPrivateKey], label: bytes) -> bytes | None:
    """The plaintext if a key unwraps the session key under `label`; None if none does."""
    for key in keys:
        if (key.key_size + 7) // 8 != len(blob.wrapped):
            continue  # OAEP ciphertexts are exactly as long as the modulus
        try:
            session_key = key.decrypt(blob.wrapped, _oaep(label))
        except ValueError:
            continue
        if len(session_key) not in (16, 24, 32):
            raise BodyFailed
        try:
            return AESGCM(session_key).decrypt(_NONCE, blob.body, None)
        except InvalidTag:
            raise BodyFailed from None
    return None


def diagnose(
    blob: Blob,
    keys: Sequence[rsa.RSAPrivateKey],
    place: Place,
    alternates: Sequence[Place],
    where: str,
    source: str | None,
    *,
    others_open: bool,
    also: Sequence[str] = (),
) -> NoKeyCouldDecrypt:
    """Why a value does not open at `place`, as precisely as can be proven without guessing."""
    more = f"; {', '.join(also)} also failed" if also else ""
    sizes = sorted({key.key_size for key in keys})
    if 8 * len(blob.wrapped) not in {(s + 7) // 8 * 8 for s in sizes}:
        given = "/".join(map(str, sizes))
        return WrongKey(
            f"{where} was sealed for a {8 * len(blob.wrapped)}-bit RSA key; the {len(keys)} key(s) given "
            f"are {given}-bit{more}",
            file=source,
            hint=f"pass the controller key that was active when it was sealed ({KEY_HINT})",
        )
    for alt in alternates:
        try:
            opened = attempt(blob, keys, alt.label) is not None
        except BodyFailed:
            opened = True  # the label unwrapped the session key: the place is proven either way
        if opened:
            return LabelMismatch(
                f"{where}: the label did not match: it was sealed for {alt.describe()}, "
                f"not for {place.describe()}{more}",
                file=source,
                hint="a sealed value only opens where it was sealed; seal it again for this place",
            )
    return NoKeyCouldDecrypt(
        f"{where}: no key could decrypt it with the label of {place.describe()}: it was sealed for "
        f"another name/namespace (the label did not match) or for a key not given{more}",
        file=source,
        hint="the other values here open with these keys, so it was most likely copied from another SealedSecret"
        if others_open
        else f"pass every controller key ({KEY_HINT}), or check metadata.name and metadata.namespace",
    )


def altered(where: str, source: str | None) -> AlteredValue:
    """The error for a value whose session key unwrapped but whose body did not authenticate."""
    return AlteredValue(
        f"{where}: the key and label are right but AES-GCM authentication failed: the value was altered",
        file=source,
        hint="restore it from git, or seal it again",
    )


def open_value(
    value: str,
    label: bytes,
    keys: Sequence[rsa.RSAPrivateKey],
    *,
    where: str = "value",
    source: str | None = None,
) -> bytes:
    """One value's plaintext (the controller's HybridDecrypt, trying every key)."""
    if not keys:
        raise ControllerKeyError("no controller private key given", file=source, hint=KEY_HINT)
    blob = parse_blob(value, where, source)
    try:
        plaintext = attempt(blob, keys, label)
    except BodyFailed:
        raise altered(where, source) from None
    if plaintext is None:
        raise diagnose(blob, keys, place_from_label(label), [], where, source, others_open=False)
    return plaintext
