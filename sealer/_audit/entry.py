"""The audit line format: what one entry holds, and how it is written, hashed and read back.

The chain, the anchor and verification all read or write these lines, so the format sits here,
below them, with the errors they share: an `Event` (names only, no place for a value) becomes one
ASCII JSON line whose `hash` member is the SHA-256 of the line without it (`encode_line`), and a
stored line splits back into its hashed bytes and claimed hash (`split_hash`) and its fields
(`parse_line`, checked by `shape_error`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import SealerError

GENESIS = "0" * 64
RESULTS = ("ok", "fail")
MAX_FIELD = 500  # characters kept of a reason; longer text is cut, never a line break
MAX_PATH = 4096
HEX_HASH = re.compile(r"[0-9a-f]{64}")
_EVENT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KID = re.compile(r"[0-9a-f]{16}")
_HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}')
_FIELDS = ("seq", "time", "actor", "event", "env", "file", "kids", "commit", "result", "reason", "prev", "hash")


class AuditError(SealerError):
    """The audit log cannot be opened, locked or written."""


class AuditInvalid(AuditError):
    """`verify` found a line that was edited, removed, reordered or truncated."""


@dataclass(frozen=True)
class Event:
    """One thing that happened. Names only: there is deliberately no field for a value."""

    event: str
    result: str = "ok"
    env: str | None = None
    file: str | None = None
    kids: Sequence[str] = ()
    commit: str | None = None
    reason: str | None = None
    actor: str | None = None  # None: the log's actor
    time: float | None = None  # None: now


@dataclass(frozen=True)
class Head:
    """A place in a log's chain: the last entry's number and the hash the next line chains to
    (0 and GENESIS for an empty or missing log)."""

    entries: int
    hash: str


def _clean(text: str | None, limit: int) -> str | None:
    """One line of printable text, cut to `limit`: a reason must not forge a second log line."""
    if text is None:
        return None
    flat = " ".join(str(text).split())
    flat = "".join(c for c in flat if c.isprintable())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _rfc3339(t: float) -> str:
    whole = int(t)
    ms = int((t - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def encode_line(seq: int, ev: Event, actor: str, prev: str) -> tuple[bytes, str]:
    """The line for `ev` (with newline) and its hash."""
    if not _EVENT.fullmatch(ev.event):
        raise ValueError(f"bad audit event name {ev.event!r}")
    if ev.result not in RESULTS:
        raise ValueError(f"audit result must be one of {RESULTS}")
    kids = sorted({k for k in ev.kids if _KID.fullmatch(k)})
    body = {
        "seq": seq,
        "time": _rfc3339(time.time() if ev.time is None else ev.time),
        "actor": _clean(ev.actor or actor, 200),
        "event": ev.event,
        "env": _clean(ev.env, 100),
        "file": _clean(ev.file, MAX_PATH),
        "kids": kids,
        "commit": _clean(ev.commit, 100),
        "result": ev.result,
        "reason": _clean(ev.reason, MAX_FIELD),
        "prev": prev,
    }
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    digest = hashlib.sha256(text).hexdigest()
    return text[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def split_hash(raw: bytes) -> tuple[bytes, str] | None:
    """(the hashed bytes, the claimed hash) of a stored line, or None if it has no hash member."""
    m = _HASH_TAIL.search(raw)
    if m is None or m.end() != len(raw):
        return None
    return raw[: m.start()] + b"}", m.group(1).decode()


def parse_line(raw: bytes) -> dict[str, object] | None:
    """The JSON object `raw` holds, or None if it holds none (a torn or damaged line)."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def shape_error(obj: dict[str, object]) -> str | None:
    """Why a parsed line is not of the audit shape (fields, order, types), or None if it is."""
    if list(obj) != list(_FIELDS):
        return "does not have the audit fields in order"
    if type(obj["seq"]) is not int:
        return "field 'seq' is not a number"
    for name in ("time", "actor", "event", "result", "prev"):
        if not isinstance(obj[name], str):
            return f"field {name!r} is not text"
    for name in ("env", "file", "commit", "reason"):
        if obj[name] is not None and not isinstance(obj[name], str):
            return f"field {name!r} is not text"
    kids = obj["kids"]
    if not isinstance(kids, list) or not all(isinstance(k, str) for k in kids):
        return "field 'kids' is not a list of key ids"
    if obj["result"] not in RESULTS:
        return "field 'result' is neither ok nor fail"
    return None
