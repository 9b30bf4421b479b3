"""The head anchor, kept outside the log, because a hash chain cannot show what was cut off its end.

An emptied, truncated, replaced or recreated log is still a valid chain, so the CLI keeps, under
the user's config dir (`anchor_path`), the last entry it wrote to each log: its number, hash and
byte range (`Anchor`). A writer moves the anchor only while the log still holds the entry it
names (`anchor_problem`), and `verify` compares the log against it (`load_anchor`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .entry import HEX_HASH, AuditError, Head, parse_line, split_hash

ANCHORS_DIR = "audit-anchors"  # under the user's config dir, next to the default log


@dataclass(frozen=True)
class Anchor:
    """The last entry the CLI wrote to a log, kept outside it (`anchor_path`): its number, hash and
    byte range. Written only while the log still holds the previous anchored entry."""

    path: Path  # the anchor file
    log: str
    entry: int
    hash: str
    start: int
    end: int

    def to_dict(self) -> dict[str, object]:
        return {"file": str(self.path), "entry": self.entry, "hash": self.hash}


def anchor_path(log: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Path:
    """Where the CLI keeps the anchor of `log`: one small file per log (named by its absolute
    path) under `audit-anchors/` in the user's sealer config dir, so the anchor is neither cut,
    emptied nor restored with the log."""
    from .._identities import user_config_dir

    target = Path(os.path.abspath(log))
    target = target.parent.resolve() / target.name  # the log itself is never followed (O_NOFOLLOW)
    key = hashlib.sha256(os.fsencode(target)).hexdigest()[:32]
    return user_config_dir(environ) / ANCHORS_DIR / f"{key}.json"


def load_anchor(log: str | os.PathLike[str], *, path: Path | None = None) -> Anchor | None:
    """The anchor kept for `log` (None: this user's sealer never wrote it). Raises AuditError if
    the anchor file is unreadable or not one."""
    where = path if path is not None else anchor_path(log)
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AuditError(f"cannot read the audit anchor: {e.strerror}", file=str(where)) from None
    obj = parse_line(raw)
    values = _anchor_values(obj) if obj is not None else None
    if values is None:
        raise AuditError("the audit anchor is not one (edited or damaged)", file=str(where))
    return Anchor(where, *values)


def _anchor_values(obj: dict[str, object]) -> tuple[str, int, str, int, int] | None:
    """(log, entry, hash, start, end) of a parsed anchor file, or None if it is not an anchor."""
    log, entry, digest, start, end = (obj.get(k) for k in ("log", "entry", "hash", "start", "end"))
    if not (type(entry) is int and type(start) is int and type(end) is int):
        return None
    if not (isinstance(digest, str) and isinstance(log, str)):
        return None
    if not (entry >= 1 and 0 <= start < end and HEX_HASH.fullmatch(digest)):
        return None
    return log, entry, digest, start, end


def save_anchor(where: Path, log: Path, head: Head, start: int, end: int) -> None:
    """Move the anchor at `where` to `head`, the entry of `log` at bytes `start`..`end`."""
    from .._fsio import atomic_write

    body = {"log": str(log), "entry": head.entries, "hash": head.hash, "start": start, "end": end}
    try:
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(where, json.dumps(body).encode() + b"\n", mode=0o600)
    except OSError as e:
        raise AuditError(f"cannot update the audit anchor: {e.strerror}", file=str(where)) from None


def anchor_problem(fd: int, anchor: Anchor, size: int) -> str | None:
    """Why the open log no longer holds the anchored entry at its place, or None if it does."""
    gone = f"no longer holds entry {anchor.entry} ({anchor.hash[:16]}…) that sealer wrote to it"
    if size < anchor.end:
        return f"{gone}: it was cut, emptied, replaced or recreated"
    raw = os.pread(fd, anchor.end - anchor.start, anchor.start)
    before = os.pread(fd, 1, anchor.start - 1) if anchor.start > 0 else b"\n"
    split = split_hash(raw[:-1]) if raw.endswith(b"\n") and before == b"\n" else None
    if split is None or split[1] != anchor.hash or hashlib.sha256(split[0]).hexdigest() != anchor.hash:
        return f"{gone}: it was replaced, rewritten or restored from another copy"
    return None
