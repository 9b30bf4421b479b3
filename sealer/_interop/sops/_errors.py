"""The typed errors of the SOPS interop: one line each, never key material or plaintext."""

from __future__ import annotations

from ...errors import SealerError


class SopsError(SealerError):
    """Base class: a SOPS file could not be read or written."""


class SopsFormatError(SopsError):
    """Not a SOPS file, or its structure or metadata is malformed."""


class SopsValueError(SopsError):
    """An encrypted value is garbled or truncated, or does not decrypt at its place."""


class SopsMACError(SopsError):
    """The file's MAC does not match its values: something was added, removed, reordered or edited."""


class SopsNoKeyError(SopsError):
    """No age identity, or none of ours opens any of the file's age stanzas."""


class SopsUnsupportedError(SopsError):
    """The file needs something sealer does not do: non-age master keys only, Shamir key groups, …"""
