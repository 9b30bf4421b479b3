"""Who a file is for: the recipient and identity interfaces, age's two native kinds (X25519 keys and
scrypt passphrases), sealer's own key objects taken as age keys, and finding the file key in a header.

Why a module of its own (Go age's `x25519.go` and `scrypt.go`): this is where the stanza bodies are
made and opened, with every check the spec puts on a stanza of a known type (a malformed one is a
header error, not a silent skip), and where the no-match errors explain what was tried.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..._format import bech32 as _bech32
from ..._keys import Identity as SealerIdentity
from ..._keys import Recipient as SealerRecipient
from ._errors import AgeError, AgeHeaderError, AgeNoMatchError
from ._format import Stanza, decode_b64, encode_b64
from ._primitives import aead_open, aead_seal, hkdf

DEFAULT_WORK_FACTOR: Final = 18  # log2(N) when encrypting: what `age -p` uses (about 1 s, 256 MiB)
MAX_WORK_FACTOR: Final = 22  # the cap when decrypting, as Go age caps it: a hostile file cannot demand more
FILE_KEY_SIZE: Final = 16

_X25519_LABEL: Final = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL: Final = b"age-encryption.org/v1/scrypt"
_WORK_FACTOR_RE: Final = re.compile(r"[1-9][0-9]*")


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


# --- X25519 ----------------------------------------------------------------------------------------


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
        from ..._keys import X25519Recipient, parse_recipient

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
        wrap_key = hkdf(shared, share + self._public, _X25519_LABEL)
        return [Stanza("X25519", (encode_b64(share),), aead_seal(wrap_key, file_key))]

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
        from ..._keys import X25519Identity, parse_identity

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
        share = decode_b64(stanza.args[0], "X25519 stanza share")
        if len(share) != 32:
            raise AgeHeaderError("malformed X25519 stanza: the share is not 32 bytes")
        if len(stanza.body) != 32:
            raise AgeHeaderError("malformed X25519 stanza: the body is not 32 bytes")
        try:
            shared = self._key.exchange(x25519.X25519PublicKey.from_public_bytes(share))
        except ValueError:
            # An all-zero shared secret (low-order share): the spec says abort, not skip.
            raise AgeHeaderError("invalid X25519 stanza: low-order share") from None
        wrap_key = hkdf(shared, share + self._public, _X25519_LABEL)
        return aead_open(wrap_key, stanza.body)

    def __repr__(self) -> str:
        return f"X25519AgeIdentity(recipient={self.recipient.encode()!r})"


# --- scrypt (passphrases) --------------------------------------------------------------------------


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
        return [Stanza("scrypt", (encode_b64(salt), str(self.work_factor)), aead_seal(key, file_key))]

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
        salt = decode_b64(stanza.args[0], "scrypt stanza salt")
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
        return aead_open(key, stanza.body)

    def __repr__(self) -> str:
        return "ScryptIdentity()"


# --- sealer's keys as age keys ---------------------------------------------------------------------

RecipientLike = AgeRecipient | SealerRecipient | str
IdentityLike = AgeIdentity | SealerIdentity


def _recipient_bytes(recipient: SealerRecipient) -> bytes:
    # sealer._keys exposes no raw-bytes accessor; the canonical age1… text carries exactly those bytes.
    return _bech32.decode(recipient.encode())[1]


def _identity_bytes(identity: SealerIdentity) -> bytes:
    # `encode()` is sealer._keys's documented way to get the secret out; decode it straight back.
    return _bech32.decode(identity.encode())[1]


def as_recipient(value: RecipientLike) -> AgeRecipient:
    """`age1…` text, a sealer X25519 recipient or an age recipient, as an age recipient."""
    from ..._keys import X25519Recipient

    if isinstance(value, str):
        return X25519AgeRecipient.parse(value)
    if isinstance(value, X25519Recipient):
        return X25519AgeRecipient(_recipient_bytes(value))
    if isinstance(value, AgeRecipient):
        return value
    raise AgeError(f"cannot encrypt to a {type(value).__name__}: only X25519 and passphrase recipients")


def _as_identity(value: IdentityLike) -> AgeIdentity:
    from ..._keys import X25519Identity

    if isinstance(value, X25519Identity):
        return X25519AgeIdentity(_identity_bytes(value))
    if isinstance(value, AgeIdentity):
        return value
    raise AgeError(f"cannot decrypt with a {type(value).__name__}: only X25519 and passphrase identities")


def usable_identities(identities: Sequence[IdentityLike]) -> list[AgeIdentity]:
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


def unwrap_file_key(stanzas: Sequence[Stanza], identities: Sequence[AgeIdentity]) -> bytes:
    """The file key from the first stanza an identity opens, or a no-match error saying what was missing."""
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
