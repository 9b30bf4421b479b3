"""Typed errors. Each carries a message written for the person who hit it and an exit code.

The CLI maps them to exit codes in one place (`sealer._cli`); nothing else prints tracebacks.
Messages must never contain secret material: callers pass paths, kids and field names only.
"""

from __future__ import annotations


class SealerError(Exception):
    """Base class: `str(err)` is a complete one-line message for a person."""

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None) -> None:
        self.file = file
        self.hint = hint
        text = f"{file}: {message}" if file else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)


class UsageError(SealerError):
    """The command was called wrongly (exit 2, like click's own usage errors)."""

    exit_code = 2


class InputError(SealerError):
    """A file is missing, unreadable, too large or not the YAML we expect."""


class ConfigError(SealerError):
    """`.sealer.yaml` or the keys/ registry is missing, malformed or inconsistent."""


class KeyFormatError(SealerError):
    """A recipient or identity string is not a valid encoding."""


class IdentityError(SealerError):
    """No usable private key: none found, none matching, or a key file with unsafe permissions."""


class EnvironmentMismatch(SealerError):
    """A file, path rule and requested environment disagree."""


class TokenError(SealerError):
    """A sealed token is malformed or of an unknown version."""


class UnsealError(SealerError):
    """A token is well-formed but does not open: altered, moved, or sealed to other keys."""


class PathError(SealerError):
    """A value path (as given to `sealer set`) is malformed or does not exist in the document."""
