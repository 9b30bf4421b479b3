"""age v1 files (https://age-encryption.org/v1, C2SP `age.md`): X25519 and scrypt recipients, ASCII
armor, the STREAM payload.

Why here: SOPS wraps its data keys in armored age files, passphrase-protected identity files are age
scrypt files (so `age -d` opens them too), and the DESIGN promises that sealer keys work with the
`age` CLI. Every primitive comes from `cryptography` (X25519, HKDF-SHA256, HMAC-SHA256, scrypt,
ChaCha20-Poly1305); this module only composes them as the spec says.

Shape, after FiloSottile/age: a recipient wraps a file key into stanzas, an identity unwraps one
stanza; `encrypt` and `decrypt` work over any objects with those one-method interfaces.

Release rule: `decrypt` returns the plaintext only once the whole file has verified (header MAC and
every payload chunk, through the final one): nothing partial ever leaves it. `iter_decrypt` follows
Go age's streaming rule instead (each authenticated chunk is released at once) for callers that need
to stream large files and can discard output on a later error.

Errors are typed after the age testkit's classes (no match, header, HMAC, payload, armor). Their
messages never contain key material, passphrases or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .._format import bech32 as _bech32
from .._keys import Identity as SealerIdentity
from .._keys import Recipient as SealerRecipient
from ..errors import SealerError

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

VERSION_LINE: Final = b"age-encryption.org/v1\n"
ARMOR_BEGIN: Final = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END: Final = "-----END AGE ENCRYPTED FILE-----"

DEFAULT_WORK_FACTOR: Final = 18  # log2(N) when encrypting: what `age -p` uses (about 1 s, 256 MiB)
MAX_WORK_FACTOR: Final = 22  # the cap when decrypting, as Go age caps it: a hostile file cannot demand more

FILE_KEY_SIZE: Final = 16
CHUNK_SIZE: Final = 64 * 1024
_TAG_SIZE: Final = 16
_ENC_CHUNK_SIZE: Final = CHUNK_SIZE + _TAG_SIZE
_COLUMNS: Final = 64  # base64 characters per line, header bodies and armor alike
_BYTES_PER_LINE: Final = _COLUMNS // 4 * 3
_ZERO_NONCE: Final = bytes(12)
_X25519_LABEL: Final = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL: Final = b"age-encryption.org/v1/scrypt"
_WORK_FACTOR_RE: Final = re.compile(r"[1-9][0-9]*")
_MAX_ARMOR_WHITESPACE: Final = 1024


# --- errors ----------------------------------------------------------------------------------------


class AgeError(SealerError):
    """Base class: an age file could not be written or opened."""


class AgeNoMatchError(AgeError):
    """The header parses, but none of the given identities (or passphrases) unwraps a stanza."""


class AgeHeaderError(AgeError):
    """The header does not parse, a stanza is malformed, or the payload nonce is missing."""


class AgeHMACError(AgeError):
    """A file key was unwrapped, but the header MAC does not match: the header was altered."""


class AgePayloadError(AgeError):
    """The payload does not decrypt through to an authenticated final chunk (altered or truncated)."""


class AgeArmorError(AgeError):
    """The ASCII armor is not the strict PEM that age writes."""


# --- stanzas, recipients, identities ---------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of the header: `-> type args…` and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@runtime_checkable
class AgeRecipient(Protocol):
    """Something a file can be encrypted to: wraps the file key into stanzas."""

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


@runtime_checkable
class AgeIdentity(Protocol):
    """Something that opens files: returns the file key from a stanza addressed to it, None when the
    stanza is not for it (another type, another key), and raises AgeHeaderError when a stanza of its
    type is malformed (the spec makes that fatal, not a silent skip)."""

    def unwrap(self, stanza: Stanza) -> bytes | None: ...


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _aead_open(key: bytes, body: bytes) -> bytes | None:
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


class X25519AgeRecipient:
    """An age X25519 recipient (`age1…`)."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise AgeError("an X25519 public key is 32 bytes")
        self._public = public_key
        self._key = x25519.X25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def parse(cls, text: str) -> X25519AgeRecipient:
        """Parse `age1…` text (the same checks as sealer._keys, which also refuses low-order points)."""
        from .._keys import X25519Recipient, parse_recipient

        recipient = parse_recipient(text)
        if not isinstance(recipient, X25519Recipient):  # pragma: no cover - parse_recipient has one kind today
            raise AgeError("only X25519 (age1…) recipients are supported")
        return cls(_recipient_bytes(recipient))

    def encode(self) -> str:
        return _bech32.encode("age", self._public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(self._key)
        except ValueError:
            raise AgeError("invalid X25519 recipient: low-order point") from None
        wrap_key = _hkdf(shared, share + self._public, _X25519_LABEL)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza("X25519", (_b64encode(share),), body)]

    def __repr__(self) -> str:
        return f"X25519AgeRecipient({self.encode()!r})"


class X25519AgeIdentity:
    """An age X25519 identity (`AGE-SECRET-KEY-1…`). Its secret never appears in repr or errors."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise AgeError("an X25519 private key is 32 bytes")
        self._key = x25519.X25519PrivateKey.from_private_bytes(private_key)
        self._public = self._key.public_key().public_bytes_raw()

    @classmethod
    def parse(cls, text: str) -> X25519AgeIdentity:
        from .._keys import X25519Identity, parse_identity

        identity = parse_identity(text)
        if not isinstance(identity, X25519Identity):  # pragma: no cover - parse_identity has one kind today
            raise AgeError("only X25519 (AGE-SECRET-KEY-1…) identities are supported")
        return cls(_identity_bytes(identity))

    @property
    def recipient(self) -> X25519AgeRecipient:
        return X25519AgeRecipient(self._public)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "X25519":
            return None
        if len(stanza.args) != 1:
            raise AgeHeaderError("malformed X25519 stanza: expected one argument")
        share = _b64decode(stanza.args[0], "X25519 stanza share")
        if len(share) != 32:
            raise AgeHeaderError("malformed X25519 stanza: the share is not 32 bytes")
        if len(stanza.body) != 32:
            raise AgeHeaderError("malformed X25519 stanza: the body is not 32 bytes")
        try:
            shared = self._key.exchange(x25519.X25519PublicKey.from_public_bytes(share))
        except ValueError:
            # An all-zero shared secret (low-order share): the spec says abort, not skip.
            raise AgeHeaderError("invalid X25519 stanza: low-order share") from None
        wrap_key = _hkdf(shared, share + self._public, _X25519_LABEL)
        return _aead_open(wrap_key, stanza.body)

    def __repr__(self) -> str:
        return f"X25519AgeIdentity(recipient={self.recipient.encode()!r})"


def _check_passphrase(passphrase: str | bytes) -> bytes:
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not data:
        raise AgeError("the passphrase is empty")
    return data


def _scrypt(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptRecipient:
    """A passphrase. An scrypt stanza must be the only stanza of its file (the spec's rule)."""

    def __init__(self, passphrase: str | bytes, work_factor: int = DEFAULT_WORK_FACTOR) -> None:
        if not 1 <= work_factor <= MAX_WORK_FACTOR:
            raise AgeError(f"scrypt work factor must be between 1 and {MAX_WORK_FACTOR}")
        self._passphrase = _check_passphrase(passphrase)
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = os.urandom(16)
        key = _scrypt(self._passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza("scrypt", (_b64encode(salt), str(self.work_factor)), body)]

    def __repr__(self) -> str:
        return f"ScryptRecipient(work_factor={self.work_factor})"


class ScryptIdentity:
    """A passphrase that opens scrypt files whose work factor is at most `max_work_factor`."""

    def __init__(self, passphrase: str | bytes, max_work_factor: int = MAX_WORK_FACTOR) -> None:
        if not 1 <= max_work_factor <= 30:
            raise AgeError("the maximum scrypt work factor must be between 1 and 30")
        self._passphrase = _check_passphrase(passphrase)
        self.max_work_factor = max_work_factor

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "scrypt":
            return None
        if len(stanza.args) != 2:
            raise AgeHeaderError("malformed scrypt stanza: expected two arguments")
        salt = _b64decode(stanza.args[0], "scrypt stanza salt")
        if len(salt) != 16:
            raise AgeHeaderError("malformed scrypt stanza: the salt is not 16 bytes")
        text = stanza.args[1]
        if not _WORK_FACTOR_RE.fullmatch(text):
            raise AgeHeaderError("malformed scrypt stanza: the work factor is not a plain decimal number")
        # Compare as text length first: a hostile file may carry a huge number.
        if len(text) > 2 or int(text) > self.max_work_factor:
            raise AgeHeaderError(
                f"scrypt work factor too large (the limit is {self.max_work_factor})",
                hint="age caps it the same way, so no honest tool writes such a file",
            )
        if len(stanza.body) != 32:
            raise AgeHeaderError("malformed scrypt stanza: the body is not 32 bytes")
        key = _scrypt(self._passphrase, salt, int(text))
        return _aead_open(key, stanza.body)

    def __repr__(self) -> str:
        return "ScryptIdentity()"


RecipientLike = AgeRecipient | SealerRecipient | str
IdentityLike = AgeIdentity | SealerIdentity


def _recipient_bytes(recipient: SealerRecipient) -> bytes:
    # sealer._keys exposes no raw-bytes accessor; the canonical age1… text carries exactly those bytes.
    return _bech32.decode(recipient.encode())[1]


def _identity_bytes(identity: SealerIdentity) -> bytes:
    # `encode()` is sealer._keys's documented way to get the secret out; decode it straight back.
    return _bech32.decode(identity.encode())[1]


def _as_recipient(value: RecipientLike) -> AgeRecipient:
    from .._keys import X25519Recipient

    if isinstance(value, str):
        return X25519AgeRecipient.parse(value)
    if isinstance(value, X25519Recipient):
        return X25519AgeRecipient(_recipient_bytes(value))
    if isinstance(value, AgeRecipient):
        return value
    raise AgeError(f"cannot encrypt to a {type(value).__name__}: only X25519 and passphrase recipients")


def _as_identity(value: IdentityLike) -> AgeIdentity:
    from .._keys import X25519Identity

    if isinstance(value, X25519Identity):
        return X25519AgeIdentity(_identity_bytes(value))
    if isinstance(value, AgeIdentity):
        return value
    raise AgeError(f"cannot decrypt with a {type(value).__name__}: only X25519 and passphrase identities")


def _usable_identities(identities: Sequence[IdentityLike]) -> list[AgeIdentity]:
    """The identities that can open age stanzas; other key kinds (ssh, hybrid) are passed over, as
    age passes over stanzas it does not know."""
    usable = []
    for identity in identities:
        try:
            usable.append(_as_identity(identity))
        except AgeError:
            continue
    if not usable:
        if identities:
            raise AgeNoMatchError("none of the identities is an age X25519 key or a passphrase")
        raise AgeNoMatchError("no identity to decrypt with")
    return usable


# --- base64 ----------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    """Unpadded standard base64, as the header uses."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str, what: str) -> bytes:
    """Strict unpadded base64: no padding, no line breaks, canonical (re-encoding gives the same text)."""
    if "=" in text or "\r" in text or "\n" in text or len(text) % 4 == 1:
        raise AgeHeaderError(f"malformed {what}: not canonical unpadded base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AgeHeaderError(f"malformed {what}: not base64") from None
    if _b64encode(data) != text:
        raise AgeHeaderError(f"malformed {what}: not canonical unpadded base64")
    return data


def _wrap_b64(data: bytes) -> list[str]:
    """Unpadded base64 in 64-column lines; the last line is always shorter than 64 (maybe empty)."""
    text = _b64encode(data)
    lines = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    if not lines or len(lines[-1]) == _COLUMNS:
        lines.append("")
    return lines


# --- header ----------------------------------------------------------------------------------------


@dataclass
class _Header:
    stanzas: list[Stanza]
    mac: bytes
    mac_input: bytes  # the header bytes up to and including "---"
    payload_offset: int


def _read_line(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise AgeHeaderError(f"truncated header: {what} does not end with a line feed")
    return data[pos:end], end + 1


def _is_vchar_text(value: bytes) -> bool:
    return bool(value) and all(33 <= c <= 126 for c in value)


def _parse_header(data: bytes) -> _Header:
    if not data:
        raise AgeHeaderError("empty file: not an age file")
    if not data.startswith(b"age-encryption.org/"):
        raise AgeHeaderError("not an age file (no age-encryption.org/ version line)")
    line, pos = _read_line(data, 0, "the version line")
    if line.endswith(b"\r"):
        raise AgeHeaderError("malformed header: CRLF line endings (age headers use LF only)")
    if line + b"\n" != VERSION_LINE:
        raise AgeHeaderError("unsupported age format version (only age-encryption.org/v1 is known)")
    stanzas: list[Stanza] = []
    while True:
        if data.startswith(b"---", pos):
            mac_input = data[: pos + 3]
            line, end = _read_line(data, pos, "the MAC line")
            parts = line.split(b" ")
            if parts[0] != b"---" or len(parts) != 2:
                raise AgeHeaderError("malformed header MAC line")
            mac = _b64decode(parts[1].decode("ascii", "replace"), "header MAC")
            if len(mac) != 32:
                raise AgeHeaderError("malformed header MAC line: the MAC is not 32 bytes")
            if not stanzas:
                raise AgeHeaderError("the header has no recipient stanza")
            return _Header(stanzas, mac, mac_input, end)
        if pos + 3 > len(data):
            raise AgeHeaderError("truncated header: no MAC line")
        line, pos = _read_line(data, pos, "a stanza line")
        parts = line.split(b" ")
        if parts[0] != b"->" or len(parts) < 2:
            raise AgeHeaderError("malformed stanza: expected a line '-> TYPE [ARGS…]'")
        if not all(_is_vchar_text(p) for p in parts[1:]):
            raise AgeHeaderError("malformed stanza: arguments must be non-empty printable ASCII")
        args = [p.decode("ascii") for p in parts[1:]]
        body = bytearray()
        while True:
            line, pos = _read_line(data, pos, "a stanza body line")
            try:
                text = line.decode("ascii")
            except UnicodeDecodeError:
                raise AgeHeaderError("malformed stanza body: not base64") from None
            if len(text) > _COLUMNS:
                raise AgeHeaderError("malformed stanza body: a line is longer than 64 columns")
            chunk = _b64decode(text, "stanza body")
            body += chunk
            if len(chunk) < _BYTES_PER_LINE:
                break  # a stanza ends with its first short line (which may be empty)
        stanzas.append(Stanza(args[0], tuple(args[1:]), bytes(body)))


def _header_mac(file_key: bytes, mac_input: bytes) -> _hmac.HMAC:
    h = _hmac.HMAC(_hkdf(file_key, b"", b"header"), hashes.SHA256())
    h.update(mac_input)
    return h


def _marshal_stanza(stanza: Stanza) -> bytes:
    for part in (stanza.type, *stanza.args):
        if not _is_vchar_text(part.encode("utf-8")):
            raise AgeError("stanza arguments must be non-empty printable ASCII")
    head = " ".join(("->", stanza.type, *stanza.args))
    return (head + "\n" + "".join(line + "\n" for line in _wrap_b64(stanza.body))).encode("ascii")


# --- armor -----------------------------------------------------------------------------------------


def is_armored(data: bytes) -> bool:
    """True for text that starts (after whitespace) with a PEM BEGIN line: what the CLI looks for."""
    return data.lstrip(b" \t\r\n").startswith(b"-----BEGIN")


def is_age_file(data: bytes) -> bool:
    """True for a binary age file or an armored one (cheap sniffing, nothing is verified)."""
    return data.startswith(b"age-encryption.org/") or data.lstrip(b" \t\r\n").startswith(ARMOR_BEGIN.encode())


def armor(data: bytes) -> bytes:
    """Strict PEM armor as age writes it: padded base64 in 64-column lines, no headers, LF endings."""
    text = base64.b64encode(data).decode("ascii")
    lines = [ARMOR_BEGIN, *(text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)), ARMOR_END]
    return ("\n".join(lines) + "\n").encode("ascii")


def dearmor(data: bytes) -> bytes:
    """Decode age's armor strictly, so that an armored file has exactly one encoding.

    Allowed: whitespace before and after the block, LF or CRLF line ends, a missing final newline.
    Refused: anything else outside the block, headers, empty or over-long lines, a short line that is
    not the last, missing or misplaced padding, non-canonical base64.
    """
    lines = data.split(b"\n")
    skipped = 0
    i = 0
    while i < len(lines) and not lines[i].strip(b" \t\r\n\v\f"):
        skipped += len(lines[i]) + 1
        if skipped > _MAX_ARMOR_WHITESPACE:
            raise AgeArmorError("too much whitespace before the armor")
        i += 1
    if i == len(lines):
        raise AgeArmorError("no armor: the input is empty or blank")

    def line_at(k: int) -> bytes:
        line = lines[k]
        return line[:-1] if line.endswith(b"\r") else line

    if line_at(i) != ARMOR_BEGIN.encode():
        raise AgeArmorError(f"the armor does not start with {ARMOR_BEGIN}")
    i += 1
    body: list[bytes] = []
    while True:
        if i >= len(lines):
            raise AgeArmorError(f"the armor has no {ARMOR_END} line")
        line = line_at(i)
        i += 1
        if line == ARMOR_END.encode():
            break
        if body and len(body[-1]) != _COLUMNS:
            raise AgeArmorError("malformed armor: a short line before the last one")
        if not line or len(line) > _COLUMNS:
            raise AgeArmorError("malformed armor: every line holds 1 to 64 base64 characters")
        body.append(line)
    rest = b"\n".join(lines[i:])
    if rest.strip(b" \t\r\n\v\f"):
        raise AgeArmorError("data after the armor's END line")
    if len(rest) >= _MAX_ARMOR_WHITESPACE:
        raise AgeArmorError("too much whitespace after the armor")
    text = b"".join(body)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AgeArmorError("malformed armor: not padded base64") from None
    if base64.b64encode(decoded) != text:
        raise AgeArmorError("malformed armor: the base64 is not canonical")
    return decoded


_armor_func = armor  # `encrypt` takes a keyword named `armor`


# --- encrypt / decrypt -----------------------------------------------------------------------------


def _payload_key(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(plaintext: bytes, recipients: Sequence[RecipientLike], *, armor: bool = False) -> bytes:
    """Encrypt to every recipient (`age1…` text, sealer X25519 keys, age recipients, or one
    ScryptRecipient alone). Returns a binary age file, or an armored one with `armor=True`."""
    wrapped = [_as_recipient(r) for r in recipients]
    if not wrapped:
        raise AgeError("no recipients to encrypt to")
    if any(isinstance(r, ScryptRecipient) for r in wrapped) and len(wrapped) != 1:
        raise AgeError("a passphrase must be the only recipient of a file")
    file_key = os.urandom(FILE_KEY_SIZE)
    stanzas = [s for r in wrapped for s in r.wrap(file_key)]
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise AgeError("a passphrase must be the only recipient of a file")
    header = VERSION_LINE + b"".join(_marshal_stanza(s) for s in stanzas) + b"---"
    mac = _header_mac(file_key, header).finalize()
    out = bytearray(header + b" " + _b64encode(mac).encode("ascii") + b"\n")
    nonce = os.urandom(16)
    out += nonce
    aead = _payload_key(file_key, nonce)
    view = memoryview(plaintext)
    count = max(1, -(-len(plaintext) // CHUNK_SIZE))  # an empty payload is one empty final chunk
    for i in range(count):
        chunk = bytes(view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE])
        out += aead.encrypt(_chunk_nonce(i, i == count - 1), chunk, None)
    return _armor_func(bytes(out)) if armor else bytes(out)


def _open_header(
    data: bytes, identities: Sequence[IdentityLike], armored: bool | None, source: str | None
) -> tuple[ChaCha20Poly1305, memoryview]:
    """Parse, unwrap, verify the MAC; return the payload key and the payload after its nonce."""
    try:
        if armored or (armored is None and is_armored(data)):
            data = dearmor(data)
        header = _parse_header(data)
        ids = _usable_identities(identities)
        if any(s.type == "scrypt" for s in header.stanzas) and len(header.stanzas) != 1:
            raise AgeHeaderError("an scrypt (passphrase) stanza must be the only stanza of the file")
        file_key = _unwrap(header.stanzas, ids)
        try:
            _header_mac(file_key, header.mac_input).verify(header.mac)
        except InvalidSignature:
            raise AgeHMACError("the header MAC does not match: the header was altered") from None
        nonce = data[header.payload_offset : header.payload_offset + 16]
        if len(nonce) != 16:
            raise AgeHeaderError("truncated file: the payload nonce is missing")
        return _payload_key(file_key, nonce), memoryview(data)[header.payload_offset + 16 :]
    except AgeError as err:
        if source is not None and err.file is None:
            raise type(err)(str(err), file=source) from None
        raise


def _unwrap(stanzas: Sequence[Stanza], identities: Sequence[AgeIdentity]) -> bytes:
    saw_scrypt = any(s.type == "scrypt" for s in stanzas)
    for identity in identities:
        for stanza in stanzas:
            file_key = identity.unwrap(stanza)
            if file_key is None:
                continue
            if len(file_key) != FILE_KEY_SIZE:  # pragma: no cover - bodies are checked to be 32 bytes
                raise AgeHeaderError("malformed stanza: the file key is not 16 bytes")
            return file_key
    if saw_scrypt and any(isinstance(i, ScryptIdentity) for i in identities):
        raise AgeNoMatchError("wrong passphrase (or a file not made with this passphrase)")
    if saw_scrypt:
        raise AgeNoMatchError("this file is protected by a passphrase, and none was given")
    if all(isinstance(i, ScryptIdentity) for i in identities):
        raise AgeNoMatchError("this file is encrypted to keys, not to a passphrase")
    raise AgeNoMatchError("no identity matches any recipient of this file")


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
    return _stream(aead, payload, source)


def _stream(aead: ChaCha20Poly1305, payload: memoryview, source: str | None) -> Iterator[bytes]:
    pos = 0
    counter = 0
    while True:
        chunk = bytes(payload[pos : pos + _ENC_CHUNK_SIZE])
        if not chunk:
            raise AgePayloadError("truncated payload: no final chunk", file=source)
        if len(chunk) < _ENC_CHUNK_SIZE:
            if counter and len(chunk) == _TAG_SIZE:
                raise AgePayloadError("malformed payload: an empty final chunk after other chunks", file=source)
            last = True
            plain = _open_chunk(aead, counter, True, chunk)
        else:
            last = False
            plain = _open_chunk(aead, counter, False, chunk)
            if plain is None:  # a full-size chunk may be the final one
                last = True
                plain = _open_chunk(aead, counter, True, chunk)
        if plain is None:
            raise AgePayloadError(f"payload chunk {counter} does not authenticate (altered or truncated)", file=source)
        yield plain
        pos += len(chunk)
        counter += 1
        if last:
            if pos != len(payload):
                raise AgePayloadError("data after the payload's final chunk", file=source)
            return


def _open_chunk(aead: ChaCha20Poly1305, counter: int, last: bool, chunk: bytes) -> bytes | None:
    try:
        return aead.decrypt(_chunk_nonce(counter, last), chunk, None)
    except InvalidTag:
        return None


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
