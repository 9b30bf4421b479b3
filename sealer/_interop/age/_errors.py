"""The errors of age files, typed after the age testkit's classes (no match, header, HMAC, payload,
armor), so that each testkit vector's expected failure maps to exactly one class.

Why a module of its own: every layer of the package (format, recipients, STREAM, encrypt/decrypt)
raises them, so they sit below all of it. Their messages never contain key material, passphrases
or plaintext.
"""

from __future__ import annotations

from ...errors import SealerError


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
