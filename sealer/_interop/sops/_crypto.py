"""sops's cryptography: the 32-byte data key wrapped for age recipients, every value as
`ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` with its path as AAD, and the MAC over the plaintext."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..._keys import Identity
from .. import age
from ._errors import SopsFormatError, SopsMACError, SopsNoKeyError, SopsUnsupportedError, SopsValueError
from ._metadata import SopsMetadata
from ._tree import GO_BOOLS, INT64, INT_RE, Comment, GoTime, fmt_path, go_time, to_bytes

_MAC_ONLY_ENCRYPTED_INIT: Final = hashlib.sha256(b"sops").digest()
_NONCE_SIZE: Final = 32
_ENC_RE: Final = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_FLOAT_RE: Final = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


def aad(path: Sequence[str]) -> str:
    """A value's AAD: the mapping keys from the root joined with ":", and a trailing ":"."""
    return ":".join(path) + ":"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- values ----------------------------------------------------------------------------------------


def encrypt_value(value: Any, key: bytes, path: Sequence[str]) -> Any:
    """sops's aes Cipher.Encrypt: returns the ENC[...] string ("" stays "", a comment stays one)."""
    where = aad(path)
    if isinstance(value, Comment):
        if not value.text:
            return value
        return Comment(_encrypt_text(to_bytes(value), "comment", key, where), value.inline)
    if isinstance(value, bytes):  # sops turns []byte into a string before encrypting
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str) and not value:
        return ""
    if isinstance(value, bool):
        vtype = "bool"
    elif isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            shown = where[:-1].replace(":", ".") or "(top level)"
            raise SopsUnsupportedError(f"the integer at {shown} does not fit in 64 bits")
        vtype = "int"
    elif isinstance(value, float):
        vtype = "float"
    elif isinstance(value, str):
        vtype = "str"
    elif isinstance(value, GoTime):
        vtype = "time"
    else:
        raise SopsUnsupportedError(f"cannot store a value of type {type(value).__name__}")
    return _encrypt_text(to_bytes(value), vtype, key, where)


def decrypt_value(value: Any, key: bytes, path: Sequence[str]) -> Any:
    """The inverse of `encrypt_value`: a typed plaintext value, or a decrypted Comment."""
    if isinstance(value, Comment):
        return _decrypt_comment(value, key, aad(path))
    if not isinstance(value, str):
        raise SopsValueError(f"the value at {fmt_path(path)} is not encrypted, but the rules say it must be")
    if not value:
        return value
    where = f"the value at {fmt_path(path)}"
    return _typed(*_decrypt_text(value, key, aad(path), where), where)


def _encrypt_text(plain: bytes, vtype: str, key: bytes, aad: str) -> str:
    iv = os.urandom(_NONCE_SIZE)
    out = AESGCM(key).encrypt(iv, plain, aad.encode("utf-8", "surrogateescape"))
    return f"ENC[AES256_GCM,data:{_b64(out[:-16])},iv:{_b64(iv)},tag:{_b64(out[-16:])},type:{vtype}]"


def _decrypt_text(text: str, key: bytes, aad: str, where: str) -> tuple[bytes, str]:
    """Parse and open one ENC[...] value; returns (plaintext bytes, type tag)."""
    m = _ENC_RE.match(text)
    if m is None:
        raise SopsValueError(f"{where} is not an ENC[AES256_GCM,…] value (plaintext where sops expects ciphertext)")
    try:
        data, iv, tag = (base64.b64decode(g, validate=True) for g in m.group(1, 2, 3))
    except (binascii.Error, ValueError):
        raise SopsValueError(f"{where} is garbled: its data, iv or tag is not base64") from None
    if len(tag) != 16 or not 8 <= len(iv) <= 128:
        raise SopsValueError(f"{where} is garbled: wrong iv or tag length (truncated?)")
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode("utf-8", "surrogateescape"))
    except InvalidTag:
        raise SopsValueError(
            f"{where} does not decrypt: altered, truncated, moved from another key, or from another file"
        ) from None
    return plain, m.group(4)


def _typed(plain: bytes, vtype: str, where: str) -> Any:
    """Decode a decrypted value by its type tag, as sops's aes Cipher.Decrypt does."""
    if vtype == "bytes":
        return plain
    text = plain.decode("utf-8", "surrogateescape")
    if vtype == "str":
        return text
    if vtype == "comment":
        return Comment(text)
    if vtype == "int" and INT_RE.fullmatch(text) and INT64[0] <= int(text) <= INT64[1]:
        return int(text)
    if vtype == "float" and _FLOAT_RE.fullmatch(text):
        return float(text)
    if vtype == "bool" and text in GO_BOOLS:
        return GO_BOOLS[text]
    if vtype == "time":
        stamp = go_time(text)
        if stamp is not None:
            return stamp
    if vtype not in ("int", "float", "bool", "time"):
        raise SopsValueError(f"{where} has an unknown type tag {vtype!r}")
    raise SopsValueError(f"{where} does not hold a valid {vtype}")


def _decrypt_comment(comment: Comment, key: bytes, aad: str) -> Comment:
    """Decrypt a comment; one that does not decrypt is kept as it is, as sops does (older files)."""
    if not comment.text:
        return comment
    try:
        plain, vtype = _decrypt_text(comment.text, key, aad, "a comment")
    except SopsValueError:
        return comment
    if vtype != "comment":
        return comment
    return Comment(plain.decode("utf-8", "surrogateescape"), comment.inline)


# --- the MAC ---------------------------------------------------------------------------------------


class Mac:
    """SHA-512 over the plaintext of the values (not the comments, not the nulls) in file order, as
    upper-case hex; with mac_only_encrypted, a fixed prefix and then the encrypted values only."""

    def __init__(self, mac_only_encrypted: bool) -> None:
        self._only_encrypted = mac_only_encrypted
        self._digest = hashlib.sha512()
        if mac_only_encrypted:
            self._digest.update(_MAC_ONLY_ENCRYPTED_INIT)

    def add(self, value: Any, encrypted: bool) -> None:
        """Add a value's plaintext (a value, never a comment)."""
        if encrypted or not self._only_encrypted:
            self._digest.update(to_bytes(value))

    def hexdigest(self) -> str:
        return self._digest.hexdigest().upper()


def encrypt_mac(mac: str, key: bytes, lastmodified: str) -> str:
    """The stored MAC: encrypted like a string value, with the `lastmodified` text as AAD."""
    return _encrypt_text(mac.encode("ascii"), "str", key, lastmodified)


def check_mac(metadata: SopsMetadata, key: bytes, computed: str) -> None:
    if not metadata.mac:
        raise SopsMACError("the file has no MAC", hint="sops writes one; the file was cut or edited by hand")
    stamp = go_time(metadata.lastmodified, seconds_only=True)
    assert stamp is not None  # checked in parse_metadata
    try:
        plain, vtype = _decrypt_text(metadata.mac, key, stamp.text, "the MAC")
    except SopsValueError:
        raise SopsMACError("the MAC does not decrypt: the mac or lastmodified entry was altered") from None
    if vtype != "str" or not hmac.compare_digest(plain, computed.encode("ascii")):
        raise SopsMACError(
            "MAC mismatch: the file was altered (a value added, removed, reordered or edited)",
            hint="restore it from git; sops --ignore-mac overrides this check, sealer does not",
        )


# --- the data key ----------------------------------------------------------------------------------


def new_data_key() -> bytes:
    return os.urandom(32)


def wrap_data_key(key: bytes, recipient: str) -> str:
    """The data key as an armored age file for one recipient (an `enc` entry of the metadata)."""
    return age.encrypt(key, [recipient], armor=True).decode("ascii")


def open_data_key(metadata: SopsMetadata, identities: Sequence[Identity]) -> bytes:
    """The data key, from the first age stanza one of `identities` opens."""
    if len(metadata.key_groups) > 1:
        raise SopsUnsupportedError(
            f"the data key is split over {len(metadata.key_groups)} key groups (Shamir secret sharing), "
            "which sealer does not read",
            hint="re-encrypt the file with sops to a single key group with an age recipient",
        )
    keys = metadata.age_keys
    if not keys:
        types = metadata.key_types
        names = " and ".join(types) if len(types) < 3 else ", ".join(types[:-1]) + " and " + types[-1]
        raise SopsUnsupportedError(
            f"the data key is wrapped only for {names} {'keys' if len(types) > 1 else 'key'}; "
            "sealer reads SOPS files through age recipients only",
            hint="add one with sops first: sops rotate -i --add-age age1… FILE",
        )
    if not identities:
        raise SopsNoKeyError(
            "no age identity to open this file",
            hint="set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or pass --identity",
        )
    ours = {i.recipient.encode() for i in identities}
    # Entries naming one of our recipients first: the name is public, trying it costs nothing.
    ordered = sorted(keys, key=lambda k: k.recipient not in ours)
    broken = 0
    for entry in ordered:
        try:
            key = age.decrypt(entry.enc.encode("utf-8"), identities)
        except age.AgeNoMatchError:
            continue
        except age.AgeError:
            broken += 1
            continue
        if len(key) != 32:
            raise SopsFormatError("the age stanza holds a data key that is not 32 bytes")
        return key
    kids = ", ".join(i.kid for i in identities)
    extra = f"; {broken} age stanza(s) are malformed" if broken else ""
    raise SopsNoKeyError(
        f"none of the file's {len(keys)} age stanzas opens with the identities we hold (kids {kids}){extra}",
        hint="use the key this file was encrypted to: SOPS_AGE_KEY_FILE or --identity",
    )
