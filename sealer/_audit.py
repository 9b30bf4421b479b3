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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from ._format.token import find_tokens
from .errors import SealerError, UsageError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.12

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

GENESIS = "0" * 64
RESULTS = ("ok", "fail")
MAX_FIELD = 500  # characters kept of a reason; longer text is cut, never a line break
MAX_PATH = 4096
MAX_LINE = 64 * 1024  # a line longer than this is not ours: reading the tail stops there
_EVENT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KID = re.compile(r"[0-9a-f]{16}")
_HASH = re.compile(r"[0-9a-f]{64}")
_HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}')
_FIELDS = ("seq", "time", "actor", "event", "env", "file", "kids", "commit", "result", "reason", "prev", "hash")
_OFF = ("off", "none", "-")
POLICIES = ("required", "best-effort")  # SEALER_AUDIT: what unseal and exec do when the log cannot be written
ANCHORS_DIR = "audit-anchors"  # under the user's config dir, next to the default log


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


@dataclass
class Verification:
    """The outcome of `verify`: ok, or the first bad line (1-based) and why."""

    path: str
    ok: bool
    lines: int  # lines read up to and including the first bad one
    head: str | None  # hash of the last good line
    line: int | None = None
    error: str | None = None
    hashes: list[str] = field(default_factory=list, repr=False)  # per line read, in order
    torn: list[int] = field(default_factory=list)  # torn lines checked through (the next line chains to them)
    anchor: Anchor | None = None  # what it was compared with
    hint: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "ok": self.ok,
            "lines": self.lines,
            "head": self.head,
            "line": self.line,
            "error": self.error,
            "torn": self.torn,
            "anchor": self.anchor.to_dict() if self.anchor is not None else None,
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
    if is_off(value):
        return None
    if value:
        return Path(value)
    from ._identities import user_config_dir

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


def anchor_path(log: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Path:
    """Where the CLI keeps the anchor of `log`: one small file per log (named by its absolute
    path) under `audit-anchors/` in the user's sealer config dir, so the anchor is neither cut,
    emptied nor restored with the log."""
    from ._identities import user_config_dir

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
    obj = _parse(raw)
    fields = ("entry", "start", "end")
    if (
        obj is None
        or not all(type(obj.get(k)) is int for k in fields)
        or not isinstance(obj.get("hash"), str)
        or not isinstance(obj.get("log"), str)
    ):
        raise AuditError("the audit anchor is not one (edited or damaged)", file=str(where))
    entry, start, end = (obj[k] for k in fields)
    assert isinstance(entry, int) and isinstance(start, int) and isinstance(end, int)
    if not (entry >= 1 and 0 <= start < end and _HASH.fullmatch(str(obj["hash"]))):
        raise AuditError("the audit anchor is not one (edited or damaged)", file=str(where))
    return Anchor(where, str(obj["log"]), entry, str(obj["hash"]), start, end)


def _save_anchor(where: Path, log: Path, head: Head, start: int, end: int) -> None:
    from ._fsio import atomic_write

    body = {"log": str(log), "entry": head.entries, "hash": head.hash, "start": start, "end": end}
    try:
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(where, json.dumps(body).encode() + b"\n", mode=0o600)
    except OSError as e:
        raise AuditError(f"cannot update the audit anchor: {e.strerror}", file=str(where)) from None


def _anchor_problem(fd: int, anchor: Anchor, size: int) -> str | None:
    """Why the open log no longer holds the anchored entry at its place, or None if it does."""
    gone = f"no longer holds entry {anchor.entry} ({anchor.hash[:16]}…) that sealer wrote to it"
    if size < anchor.end:
        return f"{gone}: it was cut, emptied, replaced or recreated"
    raw = os.pread(fd, anchor.end - anchor.start, anchor.start)
    before = os.pread(fd, 1, anchor.start - 1) if anchor.start > 0 else b"\n"
    split = _split_hash(raw[:-1]) if raw.endswith(b"\n") and before == b"\n" else None
    if split is None or split[1] != anchor.hash or hashlib.sha256(split[0]).hexdigest() != anchor.hash:
        return f"{gone}: it was replaced, rewritten or restored from another copy"
    return None


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


def _position(fd: int) -> tuple[str, int, bytes]:
    """Where the next line goes: the hash it chains to, its `seq`, and the bytes to write first
    (a newline after a torn last line, so the torn bytes stay a line of their own)."""
    last, complete = _tail(fd)
    if last is None:
        return GENESIS, 1, b""
    prefix = b"" if complete else b"\n"
    split = _split_hash(last)
    parsed = _parse(last) if split is not None else None
    last_seq = parsed.get("seq") if parsed is not None else None
    if split is not None and type(last_seq) is int:
        return split[1], last_seq + 1, prefix
    # A damaged tail: chain to its raw bytes, which `verify` then checks through, and number by
    # position.
    return hashlib.sha256(last).hexdigest(), _count_lines(fd) + (1 if complete else 2), prefix


class AuditLog:
    """An append-only audit file. Opened per append, so many processes can share it.

    `anchor`: the anchor file to keep (the CLI's, `anchor_path`); it is moved to each new head only
    while the log still holds the entry it names, else left where it was and `warnings` says so.
    `on_append`: called with the new head after each append (the controller exports it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        actor: str | None = None,
        anchor: Path | None = None,
        on_append: Callable[[Head], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.actor = actor or default_actor()
        self.anchor = anchor
        self.on_append = on_append
        self.last: Head | None = None  # the head after the last append
        self.warnings: list[str] = []  # of the last append: the anchor's problems

    def append(self, event: Event) -> str:
        """Append one event; returns its hash. Raises AuditError if it cannot be written."""
        head = self.append_many([event])
        assert head is not None
        return head

    def append_many(self, events: Iterable[Event], *, reanchor: bool = False) -> str | None:
        """Append events in order, under one lock, in one write and one fsync; returns the new head.

        One write per batch keeps a controller that unseals 1,000 files from paying 1,000 fsyncs.
        `reanchor`: move the anchor to the new head even if the log lost the entry it named
        (`sealer audit verify --reanchor`, after a person looked).
        """
        batch = list(events)
        self.warnings = []
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
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                prev, seq, prefix = _position(fd)
                size = os.fstat(fd).st_size
                problem = None if self.anchor is None or reanchor else self._anchor_problem(fd, size)
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
            except OSError as e:
                raise AuditError(f"cannot write the audit log: {e.strerror}", file=str(self.path)) from None
            head = Head(seq - 1, prev)
            self.last = head
            if self.anchor is not None:
                if problem is not None:
                    self.warnings.append(
                        f"warning: {self.path}: the audit log {problem}; its anchor stays on that entry "
                        "(sealer audit verify says more)"
                    )
                else:
                    end = size + len(data)  # O_APPEND under our lock: the batch ends the file
                    try:
                        _save_anchor(self.anchor, self.path, head, end - len(out[-1]), end)
                    except AuditError as e:
                        self.warnings.append(f"warning: {e}")
        finally:
            os.close(fd)  # closing releases the lock
        if self.on_append is not None:
            self.on_append(head)
        return prev

    def _anchor_problem(self, fd: int, size: int) -> str | None:
        assert self.anchor is not None
        try:
            anchor = load_anchor(self.path, path=self.anchor)
        except AuditError as e:
            return f"cannot be checked against its anchor ({e})"
        return None if anchor is None else _anchor_problem(fd, anchor, size)

    def head(self) -> Head:
        """The log's head as the next append would chain to it (0 and GENESIS if there is no log);
        read under a shared lock, without writing."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return Head(0, GENESIS)
        except OSError as e:
            raise AuditError(f"cannot read the audit log: {e.strerror}", file=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            prev, seq, _prefix = _position(fd)
        except OSError as e:
            raise AuditError(f"cannot read the audit log: {e.strerror}", file=str(self.path)) from None
        finally:
            os.close(fd)
        return Head(seq - 1, prev)


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


def verify(path: str | os.PathLike[str], *, head: str | None = None, anchor: Anchor | None = None) -> Verification:
    """Check every line; stop at the first bad one. `head`: a hash that must still be in the log;
    `anchor`: the CLI's anchor for it (`load_anchor`), whose entry must still be at its place.

    A line is bad when it is not a complete JSON line of the audit shape (truncated, edited into
    nonsense), its hash does not match its content (edited), its `seq` is not its line number, or
    its `prev` is not the previous line's hash (a line removed, inserted or moved). One exception:
    a *torn* line (a write cut short, then chained to by the next append, which hashes its raw
    bytes) is checked through and listed in `torn`, so the rest of the log is still verified.
    """
    name = os.fspath(path)
    result = Verification(name, True, 0, None, anchor=anchor)
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed below; reading line by line
    except FileNotFoundError:
        if anchor is None:
            raise AuditError("no such audit log", file=name) from None
        why = f"no such audit log, but sealer wrote entry {anchor.entry} to it (deleted or moved)"
        return _anchor_failed(result, 1, why)
    except OSError as e:
        raise AuditError(f"cannot read the audit log: {e.strerror}", file=name) from None
    prev = GENESIS
    torn: tuple[int, bytes] | None = None  # a damaged line waiting for the next one to chain to it
    with f:
        for n, raw in enumerate(f, start=1):
            result.lines = n

            def bad(why: str, n: int = n, torn: tuple[int, bytes] | None = torn) -> Verification:
                if torn is not None:  # nothing chains to the damaged line before: that one is first
                    n, why = torn[0], "is not an audit entry (truncated or edited)"
                result.ok, result.line, result.error = False, n, f"line {n}: {why}"
                return result

            if not raw.endswith(b"\n"):
                return bad("truncated (the line does not end; the file was cut or a write was torn)")
            raw = raw[:-1]
            split = _split_hash(raw)
            obj = _parse(raw)
            if split is None or obj is None:
                if torn is not None:
                    return bad("")
                torn = (n, raw)
                result.hashes.append(hashlib.sha256(raw).hexdigest())
                continue
            shape = _shape_error(obj)
            if shape:
                return bad(f"{shape} (edited)")
            hashed, claimed = split
            if hashlib.sha256(hashed).hexdigest() != claimed:
                return bad("its hash does not match its content (the line was edited)")
            seq = obj["seq"]
            if seq != n:
                return bad(f"holds entry {seq} where entry {n} belongs (a line was removed, inserted or moved)")
            if torn is not None:
                prev = result.hashes[-1]
            if obj["prev"] != prev:
                where = "the start of the log" if n == 1 else f"line {n - 1}"
                return bad(f"does not follow {where} (a line before it was removed, replaced or moved)")
            if torn is not None:
                result.torn.append(torn[0])
                torn = None
            prev = claimed
            result.head = claimed
            result.hashes.append(claimed)
    if torn is not None:
        result.ok, result.line = False, torn[0]
        result.error = f"line {torn[0]}: is not an audit entry (truncated or edited)"
        return result
    if anchor is not None:
        if result.lines < anchor.entry:
            ends = "is empty" if result.lines == 0 else f"ends at line {result.lines}"
            why = "emptied or recreated" if result.lines == 0 else "lines were cut off its end, or it is an older copy"
            why = f"the log {ends}, but sealer wrote entry {anchor.entry} to it: {why}"
            return _anchor_failed(result, result.lines + 1, why)
        if result.hashes[anchor.entry - 1] != anchor.hash:
            return _anchor_failed(
                result,
                anchor.entry,
                f"line {anchor.entry} is not the entry sealer wrote there ({anchor.hash[:16]}…): "
                "the log was cut and written again, replaced, recreated or restored from another copy",
            )
    if head is not None and head not in result.hashes:
        result.ok = False
        result.line = result.lines + 1
        result.error = (
            f"entry {head[:16]}… is not in the log: lines were cut off its end "
            f"(or it was rewritten) after line {result.lines}"
        )
    return result


def _anchor_failed(result: Verification, line: int, why: str) -> Verification:
    result.ok, result.line, result.error = False, line, why
    result.hint = f"if it was moved or rotated on purpose: sealer audit verify {result.path} --reanchor"
    return result


def reanchor(path: str | os.PathLike[str], *, head: str | None = None) -> AuditLog:
    """`sealer audit verify --reanchor`: accept the log as it is after a person looked into a
    failed anchor check. The chain must be whole (a broken log is moved aside, not re-anchored);
    an `anchor` entry saying what the old anchor named and why it failed is appended, and anchored.
    Returns the log (its `last` head and `warnings`)."""
    target = Path(path)
    try:
        old = load_anchor(target)
    except AuditError:
        old = None  # a damaged anchor is what is being replaced
    why: str | None = "the log was missing"
    if target.exists():
        chain = verify(target, head=head)
        if not chain.ok:
            raise AuditInvalid(
                chain.error or "invalid",
                file=str(target),
                hint="a broken log is not re-anchored: move it aside, then --reanchor starts a new one",
            )
        why = verify(target, anchor=old).error if old is not None else None
    reason = "anchor set" if old is None else f"anchor moved from entry {old.entry} ({old.hash[:16]}…)"
    log = AuditLog(target, actor=os.environ.get("SEALER_ACTOR") or None, anchor=anchor_path(target))
    log.append_many([Event("anchor", reason=f"{reason}: {why}" if why else reason)], reanchor=True)
    return log


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
    return "\n".join(warnings) or None


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
    return "\n".join(warnings) or None


def _append(events: Sequence[Event], path: str | os.PathLike[str] | None, actor: str | None = None) -> list[str]:
    """The CLI's append: to `path` or the default log, keeping this user's anchor for it."""
    target = Path(path) if path is not None else default_path()
    if target is None or not events:
        return []
    log = AuditLog(target, actor=actor or os.environ.get("SEALER_ACTOR") or None, anchor=anchor_path(target))
    log.append_many(events)
    return log.warnings
