"""Typed errors. Each carries a message written for the person who hit it and an exit code.

The CLI maps them to exit codes in one place (`sealer._cli`); nothing else prints tracebacks.
Messages must never contain secret material: callers pass paths, kids and field names only.
"""

from __future__ import annotations


class SealerError(Exception):
    """Base class: `str(err)` is a complete one-line message for a person.

    The parts stay readable for programs: `message`, `file`, `path` (a value path such as
    `stringData.password`) and `hint`. None of them ever holds secret material.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, file: str | None = None, path: str | None = None, hint: str | None = None
    ) -> None:
        self.message = message
        self.file = file
        self.path = path
        self.hint = hint
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled whole (a worker process's failure reaches its parent with its file, path and hint).
        return (_rebuild, (type(self), self.message, self.file, self.path, self.hint))

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        text = f"{self.file}: {text}" if self.file else text
        return f"{text} ({self.hint})" if self.hint else text


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


class Expired(UnsealError):
    """A value's expiry (bound in its token) has passed: unseal, exec, the controller and krm refuse
    it unless the environment's policy says `on_expiry: warn`."""


class PathError(SealerError):
    """A value path (as given to `sealer set`) is malformed or does not exist in the document."""


class Refused(SealerError):
    """The command is well-formed, but doing it would lose or expose something: a key still in
    use, a file that exists, a target another controller owns. Exit 1, not a usage error."""


class UnsafePath(InputError):
    """A path under an environment that sealer will not follow or read: a symbolic link, a
    submodule, a file over the size cap, a name that could escape a target."""


def _rebuild(cls: type[SealerError], message: str, file: str | None, path: str | None, hint: str | None) -> SealerError:
    return cls(message, file=file, path=path, hint=hint)
