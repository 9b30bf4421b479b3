"""The hash chain on disk: appending events to a shared log so that the chain stays whole.

Many writers share one log (the controller and a custodian's CLI), so `AuditLog` opens it per
append and writes under an exclusive `flock`, with O_APPEND and a single write and fsync per batch:
writers interleave whole lines only. Each append first finds where the chain ends (`_position`),
chaining to the raw bytes of a torn last line, and keeps the CLI's anchor when it has one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .anchor import anchor_path, anchor_problem, load_anchor, save_anchor
from .entry import GENESIS, AuditError, Event, Head, encode_line, parse_line, split_hash

MAX_LINE = 64 * 1024  # a line longer than this is not ours: reading the tail stops there
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)  # the log itself is never followed


def default_actor() -> str:
    """`user@host`; in a container without a passwd entry the user is `uid<N>`."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{os.uname().nodename}"  # os.uname: no `socket` import on the cold path


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
    split = split_hash(last)
    parsed = parse_line(last) if split is not None else None
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
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS, 0o600)
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
                    line, prev = encode_line(seq, ev, self.actor, prev)
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
                        save_anchor(self.anchor, self.path, head, end - len(out[-1]), end)
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
        return None if anchor is None else anchor_problem(fd, anchor, size)

    def head(self) -> Head:
        """The log's head as the next append would chain to it (0 and GENESIS if there is no log);
        read under a shared lock, without writing."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY | _OPEN_FLAGS)
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


def cli_log(path: Path, actor: str | None = None) -> AuditLog:
    """The log at `path` as the CLI writes it: by `actor`, else $SEALER_ACTOR, else
    `default_actor()`, keeping this user's anchor for it."""
    return AuditLog(path, actor=actor or os.environ.get("SEALER_ACTOR") or None, anchor=anchor_path(path))
