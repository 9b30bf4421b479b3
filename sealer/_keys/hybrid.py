"""Post-quantum keys: the ML-KEM-768 + X25519 hybrid KEM (X-Wing, HPKE KEM 0x647A), encoded as age
encodes its `age1pq1…` recipients and `AGE-SECRET-KEY-PQ-1…` identities.

Git history is forever: a value sealed today must stay safe from "harvest now, decrypt later". The
KEM is `cryptography`'s `KEM.MLKEM768_X25519`, the same X-Wing that age uses, so the encodings are
age's: the recipient is the 1,216-byte public key (ML-KEM-768 encapsulation key, then the X25519
public key) in Bech32 with HRP `age1pq`; the identity is the 32-byte X-Wing seed with HRP
`AGE-SECRET-KEY-PQ-`, expanded with SHAKE256 into the ML-KEM seed (64 bytes) and the X25519 key.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from .._format import bech32 as _bech32
from ..errors import KeyFormatError
from ._base import HpkeIdentity, HpkeRecipient, bech32_key

RECIPIENT_HRP: Final = "age1pq"
IDENTITY_HRP: Final = "AGE-SECRET-KEY-PQ-"
_MLKEM_PK: Final = 1184
SUITE: Final = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class HybridRecipient(HpkeRecipient):
    kind = "mlkem768x25519"
    post_quantum = True
    _suite = SUITE

    def __init__(self, public_bytes: bytes) -> None:
        if len(public_bytes) != _MLKEM_PK + 32:
            raise KeyFormatError(f"malformed age1pq recipient: key is {len(public_bytes)} bytes, expected 1216")
        try:
            pk_m = mlkem.MLKEM768PublicKey.from_public_bytes(public_bytes[:_MLKEM_PK])
            pk_x = x25519.X25519PublicKey.from_public_bytes(public_bytes[_MLKEM_PK:])
        except ValueError:
            raise KeyFormatError("invalid age1pq recipient") from None
        self._public_key = hpke.MLKEM768X25519PublicKey(pk_m, pk_x)
        self._set_text(_bech32.encode(RECIPIENT_HRP, public_bytes))

    @classmethod
    def parse(cls, text: str) -> HybridRecipient:
        # any_case: unlike age1…, an upper-case AGE1PQ1… has always been read (and is written lower-case)
        return cls(
            bech32_key(
                text, RECIPIENT_HRP, malformed="age1pq recipient", wrong="not a post-quantum recipient", any_case=True
            )
        )


class HybridIdentity(HpkeIdentity):
    _suite = SUITE

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFormatError("malformed post-quantum identity: the seed must be 32 bytes")
        expanded = hashlib.shake_256(seed).digest(96)
        sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        sk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        self._seed = seed
        self._private_key = hpke.MLKEM768X25519PrivateKey(sk_m, sk_x)
        public = sk_m.public_key().public_bytes_raw() + sk_x.public_key().public_bytes_raw()
        self.recipient = HybridRecipient(public)
        self.kid = self.recipient.kid

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> HybridIdentity:
        return cls(
            bech32_key(text, IDENTITY_HRP, malformed="post-quantum identity", wrong="not a post-quantum identity")
        )

    def encode(self) -> str:
        return _bech32.encode(IDENTITY_HRP, self._seed)
