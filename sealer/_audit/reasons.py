"""Why something failed, as one word of a small closed set, at the front of a failure's audit line.

A failed line's `reason` is `REASON: message` (`tagged`), written by the CLI (for every failed
command) and the controller (for every failed sync) alike, so `sealer audit stats` can count
failures by reason (`reason_of`) and the controller's `sealer_sync_errors_total{reason}` uses the
same words. The set is closed so a metric's cardinality stays bounded; the message stays free text
(names only, never a value, by the contract of `sealer.errors`).
"""

from __future__ import annotations

REASONS = (
    "fetch",  # the repository cannot be reached or the branch is gone (controller)
    "rollback",  # the new head does not descend from the applied commit (controller)
    "config",  # .sealer.yaml or keys/ENV.yaml is bad, or the command named an unknown environment
    "unsafe_path",  # a symlink, a submodule, an oversized file or an odd name under an environment
    "input",  # a sealed file is malformed (YAML, token, structure, wrong environment) or missing
    "unseal",  # a value does not open: altered, moved, retired key, revoked (not_before), unsigned
    "expired",  # a value is past the expiry bound in its token (policy on_expiry: refuse)
    "identity",  # the private keys cannot be loaded, or none of them opens a value
    "render",  # the plaintext cannot be laid out (bad or duplicate names)
    "apply",  # writing or swapping the target, or the target command, failed; a target not ours (controller)
    "audit",  # the audit log cannot be written (so nothing is released)
    "state",  # the state file cannot be read or written (controller)
    "internal",  # a bug: the log says which exception type
)


def reason_for(err: BaseException) -> str:
    """The reason word for an error of the library (the controller adds its own error classes,
    each naming its reason: `sealer._controller.errors.reason_for`)."""
    from .. import errors
    from .entry import AuditError

    if isinstance(err, errors.UnsafePath):
        return "unsafe_path"
    if isinstance(err, AuditError):
        return "audit"
    if isinstance(err, errors.IdentityError):
        return "identity"
    if isinstance(err, errors.Expired):
        return "expired"
    if isinstance(err, errors.UnsealError):
        return "unseal"
    if isinstance(err, (errors.TokenError, errors.InputError, errors.PathError, errors.EnvironmentMismatch)):
        return "input"
    if isinstance(err, (errors.ConfigError, errors.KeyFormatError, errors.UsageError)):
        return "config"
    if isinstance(err, errors.SealerError):
        return "input"
    return "internal"


def tagged(reason: str, message: str) -> str:
    """The `reason` field of a failed line: `REASON: message`."""
    return f"{reason}: {message}"


def reason_of(text: str | None) -> str | None:
    """The reason word at the front of a failed line's `reason`, or None when it has none (a line
    written before sealer tagged CLI failures, or not a failure)."""
    word, sep, _rest = (text or "").partition(": ")
    return word if sep and word in REASONS else None
