"""Key ids: the short fingerprint every token and registry entry names (docs/format.md § 1)."""

from __future__ import annotations

import hashlib

from ..errors import KeyFormatError


def kid_of(recipient_text: str) -> str:
    """First 8 bytes of SHA-256 of the recipient (or signer public key) string, hex."""
    try:
        data = recipient_text.encode("ascii")
    except UnicodeEncodeError:
        raise KeyFormatError("a recipient must be ASCII text") from None
    return hashlib.sha256(data).hexdigest()[:16]
