"""The log read back as entries, for `sealer audit stats` and `review`, after checking its chain.

Figures drawn from a log that was edited are worth nothing, so `read_log` verifies the log the way
`sealer audit verify` does (the chain, and this user's anchor for it) and returns the outcome with
the entries, for the caller to say plainly when the figures come from an unverified log. Lines
that are not entries (a torn write) are skipped; they are in the verification's outcome.

An entry's host is the part of its actor after the last `@` (the default actor is `user@host`);
an actor named with `--actor NAME` has no host unless NAME has one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .entry import AuditError, parse_line, shape_error
from .reasons import reason_of

if TYPE_CHECKING:
    from .verification import Verification

UNSEAL_EVENTS = ("unseal", "exec")  # a failed exec is a failed unseal: it stops before the command runs


@dataclass(frozen=True)
class LogEntry:
    """One entry as written (names only), its time in Unix seconds."""

    seq: int
    time: float
    actor: str
    event: str
    env: str | None
    file: str | None
    kids: tuple[str, ...]
    result: str
    reason: str | None

    @property
    def host(self) -> str | None:
        user, at, host = self.actor.rpartition("@")
        return host if at and user and host else None

    @property
    def failure_reason(self) -> str:
        """Why a failed entry failed, as one word of `reasons.REASONS`; `unclassified` for a failure
        written before sealer tagged the CLI's failures with their reason."""
        return reason_of(self.reason) or "unclassified"

    @property
    def unsealed(self) -> bool:
        """Plaintext left: `unseal` and `exec` write one `unseal` line per file they release."""
        return self.event == "unseal" and self.result == "ok"

    @property
    def failed_unseal(self) -> bool:
        return self.event in UNSEAL_EVENTS and self.result == "fail"


def read_log(path: str | os.PathLike[str]) -> tuple[Verification, list[LogEntry]]:
    """The log's verification (as `sealer audit verify` does it, against this user's anchor) and
    its entries in order. Raises AuditError if there is no log or it cannot be read."""
    from .anchor import load_anchor
    from .verification import verify

    checked = verify(path, anchor=load_anchor(path))
    entries: list[LogEntry] = []
    try:
        with open(path, "rb") as f:
            for raw in f:
                entry = _entry(raw.rstrip(b"\n"))
                if entry is not None:
                    entries.append(entry)
    except OSError as e:
        raise AuditError(f"cannot read the audit log: {e.strerror}", file=os.fspath(path)) from None
    return checked, entries


def _entry(raw: bytes) -> LogEntry | None:
    obj = parse_line(raw)
    if obj is None or shape_error(obj) is not None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(obj["time"]).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)

    def text(name: str) -> str | None:
        value = obj[name]
        return value if isinstance(value, str) else None

    seq = obj["seq"]
    kids = obj["kids"]
    assert isinstance(seq, int) and isinstance(kids, list)  # shape_error checked both
    return LogEntry(
        seq,
        when.timestamp(),
        str(obj["actor"]),
        str(obj["event"]),
        text("env"),
        text("file"),
        tuple(str(k) for k in kids),
        str(obj["result"]),
        text("reason"),
    )


def since_time(text: str, now: float) -> float:
    """Where a window starts, in Unix seconds, from `--since`: a DURATION back from `now` (`90s`,
    `12h`, `30d`, `1w3d`: `_config.parse_duration`, the one duration parser) or a TIME (ISO 8601,
    UTC unless stated: `_registry.parse_time`). Raises UsageError."""
    from .._config import parse_duration
    from ..errors import UsageError

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    from .._registry import parse_time

    try:
        return parse_time(text).timestamp()
    except UsageError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a time", hint="e.g. 30d, 12h, 90s, or 2026-11-25T12:00:00Z"
        ) from None
