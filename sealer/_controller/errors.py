"""Why a sync failed. Each error names a `reason`: the `reason` label of
`sealer_sync_errors_total`, the prefix of the audit line, and the word in the log.

The reasons are the audit log's closed set (`sealer._audit.reasons.REASONS`), shared with the
CLI's failure lines, so the metric's cardinality stays bounded and `sealer audit stats` counts
the controller's failures and the CLI's by the same words.
"""

from __future__ import annotations

from .. import errors
from .._audit.reasons import REASONS as REASONS  # re-exported: the metric primes a series per reason
from .._audit.reasons import reason_for as library_reason
from ..errors import SealerError


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
    if isinstance(err, ControllerError):
        return err.reason
    return library_reason(err)
