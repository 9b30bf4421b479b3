"""The keyed primitives age composes, as the spec defines them: HKDF-SHA-256, ChaCha20-Poly1305 with
a zero nonce for wrapping a file key, the header MAC and the payload key.

Why a module of its own (Go age's `primitives.go`): recipients, the header and the payload all
derive their keys from these few functions, and keeping them in one place keeps the labels and the
nonce rules from being written twice. Every primitive comes from `cryptography`.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_ZERO_NONCE: Final = bytes(12)


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 to 32 bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def aead_seal(key: bytes, plaintext: bytes) -> bytes:
    """ChaCha20-Poly1305 under a zero nonce: how a stanza body wraps the file key (each key is used once)."""
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, plaintext, None)


def aead_open(key: bytes, body: bytes) -> bytes | None:
    """The inverse of `aead_seal`; None when the body does not authenticate under `key`."""
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


def header_mac(file_key: bytes, mac_input: bytes) -> _hmac.HMAC:
    """HMAC-SHA-256 of the header up to and including `---`, keyed from the file key."""
    h = _hmac.HMAC(hkdf(file_key, b"", b"header"), hashes.SHA256())
    h.update(mac_input)
    return h


def payload_key(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    """The STREAM key of the payload, from the file key and the payload's 16-byte nonce."""
    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
