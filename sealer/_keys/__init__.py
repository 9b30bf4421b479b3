"""Key kinds: public recipients that seal, private identities that open.

Modelled on age's Recipient/Identity, one module per kind, encoded exactly as age encodes them, so
a key made by `age-keygen` works here and a key made here works with `age`, SOPS and Flux:

- `x25519`: `age1…` / `AGE-SECRET-KEY-1…`, the default;
- `hybrid`: `age1pq1…` / `AGE-SECRET-KEY-PQ-1…`, ML-KEM-768 + X25519 (post-quantum, opt-in);
- `ssh`: `ssh-ed25519 AAAA…` public keys / OpenSSH private key files, for custodians.

`parse_recipient` / `parse_identity` dispatch on the text's prefix; callers never name a kind.
"""

from __future__ import annotations

import functools

from .._format import kid_of
from ..errors import KeyFormatError
from ._base import Identity, Recipient
from .x25519 import X25519Identity, X25519Recipient

__all__ = [
    "KINDS",
    "Identity",
    "Recipient",
    "X25519Identity",
    "X25519Recipient",
    "generate_identity",
    "kid_of",
    "parse_identity",
    "parse_recipient",
]

KINDS = ("x25519", "mlkem768x25519")  # kinds `sealer keys generate --kind` can make


def parse_recipient(text: str) -> Recipient:
    """Parse a recipient string; the error names what is wrong and never echoes the text."""
    return _parse_recipient(text.strip())


@functools.lru_cache(maxsize=1024)
def _parse_recipient(text: str) -> Recipient:
    # Cached: recipients are immutable and public, and a reseal parses the same few many times.
    if text.startswith("age1pq1"):
        from .hybrid import HybridRecipient

        return HybridRecipient.parse(text)
    if text.startswith("age1"):
        return X25519Recipient.parse(text)
    if text.upper().startswith("AGE-SECRET-KEY-"):
        # Someone pasted a private key where a public one belongs: say so, and do not echo it.
        raise KeyFormatError("this is a private key (AGE-SECRET-KEY-…), not a recipient: expected age1…")
    if text.startswith("ssh-ed25519 "):
        from .ssh import SshEd25519Recipient

        return SshEd25519Recipient.parse(text)
    if text.startswith(("ssh-rsa ", "ecdsa-sha2-", "sk-ssh-")):
        raise KeyFormatError("only ssh-ed25519 ssh keys can be recipients (ssh-rsa and others are not supported)")
    raise KeyFormatError("not a recipient: expected age1…, age1pq1… or ssh-ed25519 AAAA…")


def parse_identity(text: str, *, passphrase: bytes | None = None) -> Identity:
    """Parse a private key string. No error message ever contains any part of the text."""
    text = text.strip()
    if text.startswith("AGE-SECRET-KEY-PQ-1"):
        from .hybrid import HybridIdentity

        return HybridIdentity.parse(text)
    if text.startswith("AGE-SECRET-KEY-1"):
        return X25519Identity.parse(text)
    if text.startswith("-----BEGIN OPENSSH " + "PRIVATE KEY-----"):  # split: not a key, a label
        from .ssh import SshEd25519Identity

        return SshEd25519Identity.parse(text, passphrase)
    if text.startswith("AGE-PLUGIN-"):
        raise KeyFormatError("age plugin identities (AGE-PLUGIN-…) are not supported")
    if text.lower().startswith("age-secret-key-"):
        raise KeyFormatError("age identities must be upper case, as age-keygen writes them")
    if text.startswith("age1"):
        raise KeyFormatError("this is a recipient (public key), not an identity: expected AGE-SECRET-KEY-1…")
    if text.startswith("-----BEGIN"):
        raise KeyFormatError("PEM private keys are not supported: expected AGE-SECRET-KEY-1… or an OpenSSH key")
    raise KeyFormatError("not an age identity: expected AGE-SECRET-KEY-1…")


def generate_identity(kind: str = "x25519") -> Identity:
    """A new identity: X25519 (what `age-keygen` makes) or the post-quantum hybrid (`age-keygen -pq`)."""
    if kind == "mlkem768x25519":
        from .hybrid import HybridIdentity

        return HybridIdentity.generate()
    if kind != "x25519":
        raise KeyFormatError(f"unknown key kind {kind!r}: expected one of {', '.join(KINDS)}")
    return X25519Identity.generate()
