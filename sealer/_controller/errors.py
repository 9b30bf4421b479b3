"""Why a sync failed. Each error names a `reason`: the `reason` label of
`sealer_sync_errors_total`, the prefix of the audit line, and the word in the log.

Reasons are a small closed set so the metric's cardinality stays bounded.
"""

from __future__ import annotations

from .. import errors
from ..errors import (
    ConfigError,
    EnvironmentMismatch,
    Expired,
    IdentityError,
    InputError,
    KeyFormatError,
    PathError,
    SealerError,
    TokenError,
    UnsealError,
    UsageError,
)

REASONS = (
    "fetch",  # the repository cannot be reached or the branch is gone
    "rollback",  # the new head does not descend from the applied commit
    "config",  # .sealer.yaml or keys/ENV.yaml of the commit is bad
    "unsafe_path",  # a symlink, a submodule, an oversized file or an odd name under an environment
    "input",  # a sealed file is malformed (YAML, token, structure, wrong environment)
    "unseal",  # a value does not open: altered, moved, retired key, revoked (not_before), unsigned
    "expired",  # a value is past the expiry bound in its token (policy on_expiry: refuse)
    "identity",  # the private keys cannot be loaded, or none of them opens a value
    "render",  # the plaintext cannot be laid out (bad or duplicate names)
    "apply",  # writing or swapping the target, or the target command, failed; a target not ours
    "audit",  # the audit log cannot be written (so nothing is applied)
    "state",  # the state file cannot be read or written
    "internal",  # a bug: the log says which exception type
)


class ControllerError(SealerError):
    """A sync failure with a known reason."""

    reason = "internal"


class FetchError(ControllerError):
    reason = "fetch"


class FetchCancelled(FetchError):
    """A running fetch was killed because the controller is stopping (SIGTERM, SIGINT)."""


class RollbackRefused(ControllerError):
    reason = "rollback"


class UnsafePath(ControllerError, errors.UnsafePath):
    reason = "unsafe_path"


class RenderError(ControllerError):
    reason = "render"


class ApplyError(ControllerError):
    reason = "apply"


class TargetRefused(ApplyError, errors.Refused):
    """The target is not ours to replace: another controller's output, or a directory sealer did
    not write (exit 1 at start-up; reason `apply` in a sync)."""


class StateError(ControllerError):
    reason = "state"


class KeysUnavailable(ControllerError):
    """The private keys cannot be loaded (missing file, failing vault command, bad key)."""

    reason = "identity"


class SyncFailed(ControllerError):
    """`--once` ended with a failed cycle (the CLI's exit status 1)."""


def reason_for(err: BaseException) -> str:
    """The reason label for any error a cycle can meet."""
    from .._audit import AuditError

    if isinstance(err, ControllerError):
        return err.reason
    if isinstance(err, errors.UnsafePath):
        return "unsafe_path"
    if isinstance(err, AuditError):
        return "audit"
    if isinstance(err, IdentityError):
        return "identity"
    if isinstance(err, Expired):
        return "expired"
    if isinstance(err, UnsealError):
        return "unseal"
    if isinstance(err, (TokenError, InputError, PathError, EnvironmentMismatch)):
        return "input"
    if isinstance(err, (ConfigError, KeyFormatError, UsageError)):
        return "config"
    if isinstance(err, SealerError):
        return "input"
    return "internal"
