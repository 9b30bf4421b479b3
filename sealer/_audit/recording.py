"""The CLI's side of the trail: which log it writes, and what happens when that log cannot be written.

Commands record their events through these helpers rather than through `AuditLog`: they resolve the
log (`default_path`, $SEALER_AUDIT_LOG, `off`), the actor and this user's anchor, and apply the
policy. Plaintext is released only after its line is written (`record_release`: fail closed unless
SEALER_AUDIT=best-effort), while commands whose work is already done only warn (`try_record`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from ..errors import UsageError
from .chain import cli_log
from .context import git_head
from .entry import AuditError, Event

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.12

_OFF = ("off", "none", "-")
POLICIES = ("required", "best-effort")  # SEALER_AUDIT: what unseal and exec do when the log cannot be written


def default_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """`$SEALER_AUDIT_LOG`, else `audit.log` in the user's sealer config dir; None if set to `off`."""
    env = os.environ if environ is None else environ
    value = env.get("SEALER_AUDIT_LOG", "").strip()
    if is_off(value):
        return None
    if value:
        return Path(value)
    from .._identities import user_config_dir

    return user_config_dir(env) / "audit.log"


def is_off(value: str) -> bool:
    """Whether a log setting (SEALER_AUDIT_LOG, the controller's --audit-log) says "no log"."""
    return value.strip().lower() in _OFF


def policy(environ: Mapping[str, str] | None = None) -> str:
    """`$SEALER_AUDIT`: `required` (the default: no plaintext without its audit line) or
    `best-effort` (warn and go on). Anything else is refused rather than guessed at."""
    env = os.environ if environ is None else environ
    raw = env.get("SEALER_AUDIT", "")
    value = raw.strip().lower() or "required"
    if value not in POLICIES:
        raise UsageError(
            f"SEALER_AUDIT={raw!r} is neither required nor best-effort",
            hint="unset it to require the audit log; SEALER_AUDIT_LOG=off turns the log off",
        )
    return value


class EventFields(TypedDict, total=False):
    """The keywords of `record` and `try_record`: an `Event`'s fields but its name and time."""

    env: str | None
    file: str | None
    kids: Sequence[str]
    commit: str | None
    result: str
    reason: str | None
    actor: str | None  # None: $SEALER_ACTOR, else `default_actor()`


def record(event: str, *, path: str | os.PathLike[str] | None = None, **fields: Unpack[EventFields]) -> list[str]:
    """Append one event to `path` (default: `default_path()`); nothing when the log is off.
    Raises AuditError if it cannot be written; returns the anchor's warnings."""
    return _append([Event(event, **fields)], path)


def record_release(
    events: Sequence[Event], *, path: str | os.PathLike[str] | None = None, withheld: str = "nothing was unsealed"
) -> str | None:
    """The audit lines of plaintext about to be released (unseal, exec): written first, or the
    release does not happen. An unwritable log raises AuditError (fail closed, as Vault refuses a
    request no audit device can record) unless SEALER_AUDIT=best-effort, which returns a warning
    instead; SEALER_AUDIT_LOG=off writes nothing. `withheld`: what the error says did not happen.
    Returns warnings for stderr, or None."""
    mode = policy()
    try:
        warnings = _append(events, path)
    except AuditError as e:
        if mode == "best-effort":
            return f"warning: {e}; going on without an audit line (SEALER_AUDIT=best-effort)"
        raise AuditError(
            f"{e.message}; {withheld}",
            file=e.file,
            hint="make the log writable, or set SEALER_AUDIT=best-effort to go on without a record",
        ) from None
    return _for_stderr(warnings)


def try_record(
    event: str,
    *,
    path: str | os.PathLike[str] | None = None,
    repo: str | os.PathLike[str] | None = None,
    **fields: Unpack[EventFields],
) -> str | None:
    """`record` for the CLI's other commands: their work is done (and, for seal, set, reseal and
    the key commands, visible in git) by the time the line is written, and an unwritable log must
    not undo it, so this returns a warning for stderr instead of raising. `repo`: fill `commit`
    from that repository's HEAD."""
    if fields.get("commit") is None and repo is not None:
        fields["commit"] = git_head(Path(repo))
    return try_record_events([Event(event, **fields)], path=path)


def try_record_events(
    events: Sequence[Event],
    *,
    path: str | os.PathLike[str] | None = None,
    actor: str | None = None,
) -> str | None:
    """Many events in one append (one lock, one fsync): `reseal` of 1,000 files. Returns warnings
    (one a line) instead of raising, like `try_record`."""
    try:
        warnings = _append(events, path, actor)
    except AuditError as e:
        return f"warning: {e}"
    return _for_stderr(warnings)


def _append(events: Sequence[Event], path: str | os.PathLike[str] | None, actor: str | None = None) -> list[str]:
    """The CLI's append: to `path` or the default log, keeping this user's anchor for it."""
    target = Path(path) if path is not None else default_path()
    if target is None or not events:
        return []
    log = cli_log(target, actor)
    log.append_many(events)
    return log.warnings


def _for_stderr(warnings: list[str]) -> str | None:
    """Warnings one a line, or None if there are none."""
    return "\n".join(warnings) or None
