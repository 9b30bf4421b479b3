"""The audit trail: a hash-chained log of JSON lines, one per event, never a value.

Why a chain: an audit log is only worth keeping if a later reader can tell that nobody edited,
removed or reordered what it says. Each line carries the hash of the line before it and its own
hash, so `verify` names the first line that was tampered with. A chain alone cannot reveal lines
cut off the *end* (or an emptied, replaced or recreated file), so the head is also kept outside
the file: the CLI's writes keep an *anchor* (the last entry it wrote, its hash and place) under
the user's config dir, which `verify` compares against; the controller exports its head on
/metrics and in its log, to be checked with `verify --head`. A writer that finds its anchored
entry gone still appends, but leaves the anchor where it was, so the loss stays visible.

A torn line (a write cut short by a crash or a full disk) is chained to by the next append, which
hashes its raw bytes: `verify` checks through it and reports it.

Plaintext is released only after its audit line is written (`record_release`): when the log
cannot be written, unseal and exec stop, unless SEALER_AUDIT=best-effort says to go on.

Line format (ASCII JSON, members in this order, no spaces)::

    {"seq":1,"time":"2025-11-25T17:30:00.123Z","actor":"ci@runner","event":"unseal","env":"prod",
     "file":"deploy/prod/db.yaml","kids":["928922e6866de97f"],"commit":"<sha>|null","result":"ok",
     "reason":null,"prev":"<64 hex>","hash":"<64 hex>"}

A failed line's `reason` is `REASON: message`, REASON one word of `reasons.REASONS`.

- `hash` is the lowercase hex SHA-256 of the line's bytes with its `,"hash":"…"` member removed
  (that is, the line up to the `hash` member, followed by `}`);
- `prev` is the `hash` of the previous line; the first line's `prev` is GENESIS (64 zeros);
- `seq` is the 1-based line number.

Writers append under an exclusive `flock`, with O_APPEND and a single write per batch, then
fsync: concurrent writers (the controller and a custodian's CLI) interleave whole lines only.
Fields hold names only (environments, repository paths, key ids, commits, error messages, which
by the contract of `sealer.errors` carry no secret material); the API has no place for a value.

The parts: `entry` (the line format and the errors all parts share), `chain` (appending under the
lock), `anchor` (the head kept outside the log), `verification` (`verify`, `reanchor`), `recording`
(the CLI's helpers and the fail-closed policy) and `context` (`git_head`, `kids_in`). Every name
callers use for writing and verifying is importable from `sealer._audit` itself. Reading the log
back is apart, and never loaded by a writer: `reasons` (the closed set of failure reasons a failed
line starts with), `reading` (entries, after verifying), `stats` and `review` (`sealer audit
stats`, `sealer audit review`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .anchor import Anchor, anchor_path, load_anchor
from .chain import AuditLog, default_actor
from .context import git_head, kids_in
from .entry import GENESIS, AuditError, AuditInvalid, Event, Head
from .recording import (
    EventFields,
    default_path,
    is_off,
    policy,
    record,
    record_release,
    try_record,
    try_record_events,
)

if TYPE_CHECKING:
    from .verification import Verification as Verification
    from .verification import reanchor as reanchor
    from .verification import verify as verify


def __getattr__(name: str) -> Any:
    """`audit verify` only: writing a line never loads the verifier."""
    if name in ("Verification", "reanchor", "verify"):
        from . import verification

        return getattr(verification, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GENESIS",
    "Anchor",
    "AuditError",
    "AuditInvalid",
    "AuditLog",
    "Event",
    "EventFields",
    "Head",
    "Verification",
    "anchor_path",
    "default_actor",
    "default_path",
    "git_head",
    "is_off",
    "kids_in",
    "load_anchor",
    "policy",
    "reanchor",
    "record",
    "record_release",
    "try_record",
    "try_record_events",
    "verify",
]
