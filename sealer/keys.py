"""Key kinds: public recipients that seal, private identities that open.

Modelled on age's Recipient/Identity, and encoded exactly as age encodes them, so that a key made by
`age-keygen` works here and a key made here works with `age`, SOPS and Flux. Each kind is a subclass;
`parse_recipient` / `parse_identity` dispatch on the text's prefix, which leaves room for ssh-ed25519 and
the ML-KEM-768+X25519 hybrid later without changing callers.
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from typing import Final

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from . import _bech32
from .errors import KeyFormatError, UnsealError

__all__ = [
    "Identity",
    "Recipient",
    "X25519Identity",
    "X25519Recipient",
    "generate_identity",
    "kid_of",
    "parse_identity",
    "parse_recipient",
]

_RECIPIENT_HRP: Final = "age"
_IDENTITY_HRP: Final = "AGE-SECRET-KEY-"

# Built once: a reseal runs tens of thousands of seal/open calls.
_X25519_SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def kid_of(recipient_text: str) -> str:
    """Key id: first 8 bytes of SHA-256 of the recipient string, hex. Readable without any private key."""
    try:
        data = recipient_text.encode("ascii")
    except UnicodeEncodeError:
        raise KeyFormatError("a recipient must be ASCII text") from None
    return hashlib.sha256(data).hexdigest()[:16]


class Recipient(ABC):
    """A public key that values are sealed to."""

    kid: str
    kind: str

    @abstractmethod
    def encode(self) -> str:
        """The canonical text form, as age writes it."""

    @abstractmethod
    def seal(self, plaintext: bytes, info: bytes) -> bytes:
        """HPKE base-mode single-shot seal; returns enc || ciphertext. `info` binds the context."""

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encode()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recipient):
            return NotImplemented
        return self.kind == other.kind and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash((self.kind, self.encode()))


class Identity(ABC):
    """A private key. Its text never appears in repr/str or in any error message."""

    kid: str
    recipient: Recipient

    @abstractmethod
    def encode(self) -> str:
        """The secret text form, as age-keygen writes it. The only way to get the secret out."""

    @abstractmethod
    def open(self, sealed: bytes, info: bytes) -> bytes:
        """Inverse of `Recipient.seal`; any failure is an `UnsealError` naming only the kid."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kid={self.kid!r}, recipient={self.recipient.encode()!r})"

    __str__ = __repr__


class X25519Recipient(Recipient):
    """An age X25519 recipient (`age1…`), sealed to with HPKE X25519/HKDF-SHA256/ChaCha20-Poly1305."""

    kind = "x25519"

    def __init__(self, public_key: x25519.X25519PublicKey) -> None:
        self._public_key = public_key
        self._text = _bech32.encode(_RECIPIENT_HRP, public_key.public_bytes_raw())
        self.kid = kid_of(self._text)

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = _bech32.decode(text)
        except ValueError as err:
            raise KeyFormatError(f"malformed age X25519 recipient: {err}") from None
        if hrp != _RECIPIENT_HRP or not text.startswith("age1"):
            raise KeyFormatError("not an age X25519 recipient: expected age1…")
        if len(data) != 32:
            raise KeyFormatError(f"malformed age X25519 recipient: key is {len(data)} bytes, expected 32")
        public_key = x25519.X25519PublicKey.from_public_bytes(data)
        # A low-order point gives an all-zero shared secret: refuse it now rather than at the first seal.
        try:
            x25519.X25519PrivateKey.generate().exchange(public_key)
        except ValueError:
            raise KeyFormatError("invalid age X25519 recipient: low-order point") from None
        return cls(public_key)

    def encode(self) -> str:
        return self._text

    def seal(self, plaintext: bytes, info: bytes) -> bytes:
        return _X25519_SUITE.encrypt(plaintext, self._public_key, info=info)


class X25519Identity(Identity):
    """An age X25519 identity (`AGE-SECRET-KEY-1…`)."""

    def __init__(self, private_key: x25519.X25519PrivateKey) -> None:
        self._private_key = private_key
        self.recipient = X25519Recipient(private_key.public_key())
        self.kid = self.recipient.kid

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(x25519.X25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        try:
            hrp, data = _bech32.decode(text)
        except ValueError as err:
            raise KeyFormatError(f"malformed age identity: {err}") from None
        if hrp != _IDENTITY_HRP.lower() or not text.startswith("AGE-SECRET-KEY-1"):
            raise KeyFormatError("not an age X25519 identity: expected AGE-SECRET-KEY-1…")
        if len(data) != 32:
            raise KeyFormatError(f"malformed age identity: key is {len(data)} bytes, expected 32")
        return cls(x25519.X25519PrivateKey.from_private_bytes(data))

    def encode(self) -> str:
        return _bech32.encode(_IDENTITY_HRP, self._private_key.private_bytes_raw())

    def open(self, sealed: bytes, info: bytes) -> bytes:
        try:
            return _X25519_SUITE.decrypt(sealed, self._private_key, info=info)
        except Exception:
            # Whatever went wrong (tag, length, point), say only which key did not open it.
            raise UnsealError(f"does not open with key {self.kid}") from None


def parse_recipient(text: str) -> Recipient:
    """Parse a recipient string; the error names what is wrong and never echoes the text."""
    return _parse_recipient(text.strip())


@functools.lru_cache(maxsize=1024)
def _parse_recipient(text: str) -> Recipient:
    # Cached: recipients are immutable and public, and a reseal parses the same few many times.
    if text.startswith("age1pq1"):
        raise KeyFormatError("age post-quantum (age1pq1…) recipients are not supported yet")
    if text.startswith("age1"):
        return X25519Recipient.parse(text)
    if text.upper().startswith("AGE-SECRET-KEY-"):
        # Someone pasted a private key where a public one belongs: say so, and do not echo it.
        raise KeyFormatError("this is a private key (AGE-SECRET-KEY-…), not a recipient: expected age1…")
    if text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
        raise KeyFormatError("ssh recipients are not supported yet: expected age1…")
    raise KeyFormatError("not an age X25519 recipient: expected age1…")


def parse_identity(text: str) -> Identity:
    """Parse a private key string. No error message ever contains any part of the text."""
    text = text.strip()
    if text.startswith("AGE-SECRET-KEY-PQ-1"):
        raise KeyFormatError("age post-quantum (AGE-SECRET-KEY-PQ-1…) identities are not supported yet")
    if text.startswith("AGE-SECRET-KEY-1"):
        return X25519Identity.parse(text)
    if text.startswith("AGE-PLUGIN-"):
        raise KeyFormatError("age plugin identities (AGE-PLUGIN-…) are not supported")
    if text.lower().startswith("age-secret-key-1"):
        raise KeyFormatError("age identities must be upper case, as age-keygen writes them")
    if text.startswith("age1"):
        raise KeyFormatError("this is a recipient (public key), not an identity: expected AGE-SECRET-KEY-1…")
    if text.startswith("-----BEGIN"):
        raise KeyFormatError("ssh/PEM private keys are not supported: expected AGE-SECRET-KEY-1…")
    raise KeyFormatError("not an age identity: expected AGE-SECRET-KEY-1…")


def generate_identity() -> Identity:
    """A new X25519 identity (what `age-keygen` makes)."""
    return X25519Identity.generate()
