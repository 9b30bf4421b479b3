"""age's X25519 keys: recipients `age1…`, identities `AGE-SECRET-KEY-1…`, exactly as age encodes them."""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from .._format import bech32 as _bech32
from ..errors import KeyFormatError
from ._base import HpkeIdentity, HpkeRecipient, bech32_key

RECIPIENT_HRP: Final = "age"
IDENTITY_HRP: Final = "AGE-SECRET-KEY-"

# Built once: a reseal runs tens of thousands of seal/open calls.
SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class X25519Recipient(HpkeRecipient):
    """An age X25519 recipient (`age1…`), sealed to with HPKE X25519/HKDF-SHA256/ChaCha20-Poly1305."""

    kind = "x25519"

    _suite = SUITE

    def __init__(self, public_key: x25519.X25519PublicKey) -> None:
        self._public_key = public_key
        self._set_text(_bech32.encode(RECIPIENT_HRP, public_key.public_bytes_raw()))

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        data = bech32_key(
            text, RECIPIENT_HRP, malformed="age X25519 recipient", wrong="not an age X25519 recipient", size=32
        )
        public_key = x25519.X25519PublicKey.from_public_bytes(data)
        # A low-order point gives an all-zero shared secret: refuse it now rather than at the first seal.
        try:
            x25519.X25519PrivateKey.generate().exchange(public_key)
        except ValueError:
            raise KeyFormatError("invalid age X25519 recipient: low-order point") from None
        return cls(public_key)


class X25519Identity(HpkeIdentity):
    """An age X25519 identity (`AGE-SECRET-KEY-1…`)."""

    _suite = SUITE

    def __init__(self, private_key: x25519.X25519PrivateKey) -> None:
        self._private_key = private_key
        self.recipient = X25519Recipient(private_key.public_key())
        self.kid = self.recipient.kid

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(x25519.X25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        data = bech32_key(text, IDENTITY_HRP, malformed="age identity", wrong="not an age X25519 identity", size=32)
        return cls(x25519.X25519PrivateKey.from_private_bytes(data))

    def encode(self) -> str:
        return _bech32.encode(IDENTITY_HRP, self._private_key.private_bytes_raw())
