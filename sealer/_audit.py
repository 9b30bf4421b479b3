"""The audit trail: a hash-chained log of JSON lines, one per event, never a value.

Why a chain: an audit log is only worth keeping if a later reader can tell that nobody edited,
removed or reordered what it says. Each line carries the hash of the line before it and its own
hash, so `verify` names the first line that was tampered with. A chain alone cannot reveal lines
cut off the *end*: keep the head hash that `verify` prints somewhere else (a ticket, a log
collector) and check it later with `verify --head`.

Line format (ASCII JSON, members in this order, no spaces)::

    {"seq":1,"time":"2025-11-25T17:30:00.123Z","actor":"ci@runner","event":"unseal","env":"prod",
     "file":"deploy/prod/db.yaml","kids":["928922e6866de97f"],"commit":"<sha>|null","result":"ok",
     "reason":null,"prev":"<64 hex>","hash":"<64 hex>"}

- `hash` is the lowercase hex SHA-256 of the line's bytes with its `,"hash":"…"` member removed
  (that is, the line up to the `hash` member, followed by `}`);
- `prev` is the `hash` of the previous line; the first line's `prev` is GENESIS (64 zeros);
- `seq` is the 1-based line number.

Writers append under an exclusive `flock`, with O_APPEND and a single write per batch, then
fsync: concurrent writers (the controller and a custodian's CLI) interleave whole lines only.
Fields hold names only (environments, repository paths, key ids, commits, error messages, which
by the contract of `sealer.errors` carry no secret material); the API has no place for a value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from ._format.token import find_tokens
from .errors import SealerError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.12

__all__ = [
    "GENESIS",
    "AuditError",
    "AuditInvalid",
    "AuditLog",
    "Event",
    "EventFields",
    "Verification",
    "default_actor",
    "default_path",
    "git_head",
    "kids_in",
    "record",
    "try_record",
    "try_record_events",
    "verify",
]

GENESIS = "0" * 64
RESULTS = ("ok", "fail")
MAX_FIELD = 500  # characters kept of a reason; longer text is cut, never a line break
MAX_PATH = 4096
MAX_LINE = 64 * 1024  # a line longer than this is not ours: reading the tail stops there
_EVENT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KID = re.compile(r"[0-9a-f]{16}")
_HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}')
_FIELDS = ("seq", "time", "actor", "event", "env", "file", "kids", "commit", "result", "reason", "prev", "hash")
_OFF = ("off", "none", "-")


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


@dataclass
class Verification:
    """The outcome of `verify`: ok, or the first bad line (1-based) and why."""

    path: str
    ok: bool
    lines: int  # lines read up to and including the first bad one
    head: str | None  # hash of the last good line
    line: int | None = None
    error: str | None = None
    hashes: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "ok": self.ok,
            "lines": self.lines,
            "head": self.head,
            "line": self.line,
            "error": self.error,
        }


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


def default_actor() -> str:
    """`user@host`; in a container without a passwd entry the user is `uid<N>`."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{os.uname().nodename}"  # os.uname: no `socket` import on the cold path


def default_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """`$SEALER_AUDIT_LOG`, else `audit.log` in the user's sealer config dir; None if set to `off`."""
    env = os.environ if environ is None else environ
    value = env.get("SEALER_AUDIT_LOG", "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value)
    from ._identities import user_config_dir

    return user_config_dir(env) / "audit.log"


def kids_in(text: str) -> tuple[str, ...]:
    """The key ids named by the sealed tokens in `text`, sorted, without parsing YAML."""
    kids: set[str] = set()
    for _start, _end, kid_list in find_tokens(text):
        kids.update(kid_list.split("+"))
    return tuple(sorted(kids))


def git_head(start: Path) -> str | None:
    """The commit checked out in the git repository around `start`, read from `.git` directly.

    The CLI records it with each event; importing gitpython for that would cost more than the
    command itself. Returns None outside a repository or on anything unexpected.
    """
    try:
        p = start.resolve()
        for d in (p, *p.parents):
            dotgit = d / ".git"
            if dotgit.is_dir():
                gitdir = dotgit
                break
            if dotgit.is_file():
                text = dotgit.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                gitdir = (d / text.removeprefix("gitdir:").strip()).resolve()
                break
        else:
            return None
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head) else None
        ref = head.removeprefix("ref:").strip()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except (OSError, UnicodeDecodeError):
        return None
    return None  # an unborn branch: no commit yet


def _line(seq: int, ev: Event, actor: str, prev: str) -> tuple[bytes, str]:
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


def _split_hash(raw: bytes) -> tuple[bytes, str] | None:
    """(the hashed bytes, the claimed hash) of a stored line, or None if it has no hash member."""
    m = _HASH_TAIL.search(raw)
    if m is None or m.end() != len(raw):
        return None
    return raw[: m.start()] + b"}", m.group(1).decode()


def _tail(fd: int) -> tuple[bytes | None, bool]:
    """The last line of the file (without newline) and whether the file ends with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    start = max(0, size - MAX_LINE)
    data = os.pread(fd, size - start, start)
    complete = data.endswith(b"\n")
    body = data[:-1] if complete else data
    cut = body.rfind(b"\n")
    if cut < 0 and start > 0:
        return body[-MAX_LINE:], complete  # a line longer than any we write: not ours
    return body[cut + 1 :], complete


def _count_lines(fd: int) -> int:
    n, offset = 0, 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return n
        n += chunk.count(b"\n")
        offset += len(chunk)


class AuditLog:
    """An append-only audit file. Opened per append, so many processes can share it."""

    def __init__(self, path: str | os.PathLike[str], *, actor: str | None = None) -> None:
        self.path = Path(path)
        self.actor = actor or default_actor()

    def append(self, event: Event) -> str:
        """Append one event; returns its hash. Raises AuditError if it cannot be written."""
        head = self.append_many([event])
        assert head is not None
        return head

    def append_many(self, events: Iterable[Event]) -> str | None:
        """Append events in order, under one lock, in one write and one fsync; returns the new head.

        One write per batch keeps a controller that unseals 1,000 files from paying 1,000 fsyncs.
        """
        batch = list(events)
        if not batch:
            return None
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                0o600,
            )
        except OSError as e:
            raise AuditError(f"cannot open the audit log: {e.strerror}", file=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, complete = _tail(fd)
            prefix = b"" if complete else b"\n"  # a torn last line stays visible to verify, alone
            if last is None:
                prev, seq = GENESIS, 1
            else:
                split = _split_hash(last) if complete else None
                parsed = _parse(last) if split is not None else None
                last_seq = parsed.get("seq") if parsed is not None else None
                if split is not None and isinstance(last_seq, int):
                    prev, seq = split[1], last_seq + 1
                else:
                    # A damaged tail: chain to its raw bytes so the damage stays detectable, and
                    # number by position.
                    prev = hashlib.sha256(last).hexdigest()
                    seq = _count_lines(fd) + (1 if complete else 2)
            out = [prefix]
            for ev in batch:
                line, prev = _line(seq, ev, self.actor, prev)
                out.append(line)
                seq += 1
            data = b"".join(out)
            written = os.write(fd, data)
            if written != len(data):
                raise AuditError("short write to the audit log (disk full?)", file=str(self.path))
            os.fsync(fd)
            return prev
        except OSError as e:
            raise AuditError(f"cannot write the audit log: {e.strerror}", file=str(self.path)) from None
        finally:
            os.close(fd)  # closing releases the lock


def _parse(raw: bytes) -> dict[str, object] | None:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _shape_error(obj: dict[str, object]) -> str | None:
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


def verify(path: str | os.PathLike[str], *, head: str | None = None) -> Verification:
    """Check every line; stop at the first bad one. `head`: a hash that must still be in the log.

    A line is bad when it is not a complete JSON line of the audit shape (truncated, edited into
    nonsense), its hash does not match its content (edited), its `seq` is not its line number, or
    its `prev` is not the previous line's hash (a line removed, inserted or moved).
    """
    name = os.fspath(path)
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed below; reading line by line
    except FileNotFoundError:
        raise AuditError("no such audit log", file=name) from None
    except OSError as e:
        raise AuditError(f"cannot read the audit log: {e.strerror}", file=name) from None
    result = Verification(name, True, 0, None)
    prev = GENESIS
    with f:
        for n, raw in enumerate(f, start=1):
            result.lines = n

            def bad(why: str, n: int = n) -> Verification:
                result.ok, result.line, result.error = False, n, f"line {n}: {why}"
                return result

            if not raw.endswith(b"\n"):
                return bad("truncated (the line does not end; the file was cut or a write was torn)")
            raw = raw[:-1]
            split = _split_hash(raw)
            obj = _parse(raw)
            if split is None or obj is None:
                return bad("is not an audit entry (truncated or edited)")
            shape = _shape_error(obj)
            if shape:
                return bad(f"{shape} (edited)")
            hashed, claimed = split
            if hashlib.sha256(hashed).hexdigest() != claimed:
                return bad("its hash does not match its content (the line was edited)")
            seq = obj["seq"]
            if seq != n:
                return bad(f"holds entry {seq} where entry {n} belongs (a line was removed, inserted or moved)")
            if obj["prev"] != prev:
                where = "the start of the log" if n == 1 else f"line {n - 1}"
                return bad(f"does not follow {where} (a line before it was removed, replaced or moved)")
            prev = claimed
            result.head = claimed
            result.hashes.append(claimed)
    if head is not None and head not in result.hashes:
        result.ok = False
        result.line = result.lines + 1
        result.error = (
            f"entry {head[:16]}… is not in the log: lines were cut off its end "
            f"(or it was rewritten) after line {result.lines}"
        )
    return result


class EventFields(TypedDict, total=False):
    """The keywords of `record` and `try_record`: an `Event`'s fields but its name and time."""

    env: str | None
    file: str | None
    kids: Sequence[str]
    commit: str | None
    result: str
    reason: str | None
    actor: str | None  # None: $SEALER_ACTOR, else `default_actor()`


def record(event: str, *, path: str | os.PathLike[str] | None = None, **fields: Unpack[EventFields]) -> None:
    """Append one event to `path` (default: `default_path()`); nothing when the log is off."""
    _append([Event(event, **fields)], path)


def try_record(
    event: str,
    *,
    path: str | os.PathLike[str] | None = None,
    repo: str | os.PathLike[str] | None = None,
    **fields: Unpack[EventFields],
) -> str | None:
    """`record` for the CLI: an unwritable audit log must not undo a finished seal, so this returns
    a warning for stderr instead of raising. `repo`: fill `commit` from that repository's HEAD."""
    if fields.get("commit") is None and repo is not None:
        fields["commit"] = git_head(Path(repo))
    return try_record_events([Event(event, **fields)], path=path)


def try_record_events(
    events: Sequence[Event],
    *,
    path: str | os.PathLike[str] | None = None,
    actor: str | None = None,
) -> str | None:
    """Many events in one append (one lock, one fsync): `reseal` of 1,000 files. Returns a warning
    instead of raising, like `try_record`."""
    try:
        _append(events, path, actor)
    except AuditError as e:
        return f"warning: {e}"
    return None


def _append(events: Sequence[Event], path: str | os.PathLike[str] | None, actor: str | None = None) -> None:
    target = Path(path) if path is not None else default_path()
    if target is not None and events:
        AuditLog(target, actor=actor or os.environ.get("SEALER_ACTOR") or None).append_many(events)
