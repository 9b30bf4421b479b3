"""Verification: reading a log back to tell whether anybody edited, removed or reordered its lines.

A log is only worth keeping if a later reader can check it, so `verify` walks the chain and names
the first bad line; it checks through a torn line (a write cut short, which the next append
chained to) and lists it, compares the log with a head recorded elsewhere or with the CLI's
anchor, and `reanchor` accepts a whole log again after a person looked into a failed anchor check.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .anchor import Anchor, load_anchor
from .chain import AuditLog, cli_log
from .entry import GENESIS, AuditError, AuditInvalid, Event, parse_line, shape_error, split_hash

_NOT_AN_ENTRY = "is not an audit entry (truncated or edited)"


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
            if not raw.endswith(b"\n"):
                return _line_failed(
                    result, n, torn, "truncated (the line does not end; the file was cut or a write was torn)"
                )
            raw = raw[:-1]
            split = split_hash(raw)
            obj = parse_line(raw)
            if split is None or obj is None:
                if torn is not None:
                    return _line_failed(result, n, torn, "")
                torn = (n, raw)
                result.hashes.append(hashlib.sha256(raw).hexdigest())
                continue
            shape = shape_error(obj)
            if shape:
                return _line_failed(result, n, torn, f"{shape} (edited)")
            hashed, claimed = split
            if hashlib.sha256(hashed).hexdigest() != claimed:
                return _line_failed(result, n, torn, "its hash does not match its content (the line was edited)")
            seq = obj["seq"]
            if seq != n:
                why = f"holds entry {seq} where entry {n} belongs (a line was removed, inserted or moved)"
                return _line_failed(result, n, torn, why)
            if torn is not None:
                prev = result.hashes[-1]
            if obj["prev"] != prev:
                where = "the start of the log" if n == 1 else f"line {n - 1}"
                why = f"does not follow {where} (a line before it was removed, replaced or moved)"
                return _line_failed(result, n, torn, why)
            if torn is not None:
                result.torn.append(torn[0])
                torn = None
            prev = claimed
            result.head = claimed
            result.hashes.append(claimed)
    if torn is not None:
        return _line_failed(result, torn[0], torn, _NOT_AN_ENTRY)
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
        return _failed(
            result,
            result.lines + 1,
            f"entry {head[:16]}… is not in the log: lines were cut off its end "
            f"(or it was rewritten) after line {result.lines}",
        )
    return result


def _failed(result: Verification, line: int, error: str) -> Verification:
    result.ok, result.line, result.error = False, line, error
    return result


def _line_failed(result: Verification, n: int, torn: tuple[int, bytes] | None, why: str) -> Verification:
    """Line `n` is bad for `why`; but if a damaged line before it is still waiting for a line to
    chain to it, nothing did: that one is the first bad line."""
    if torn is not None:
        n, why = torn[0], _NOT_AN_ENTRY
    return _failed(result, n, f"line {n}: {why}")


def _anchor_failed(result: Verification, line: int, why: str) -> Verification:
    result.hint = f"if it was moved or rotated on purpose: sealer audit verify {result.path} --reanchor"
    return _failed(result, line, why)


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
    log = cli_log(target)
    log.append_many([Event("anchor", reason=f"{reason}: {why}" if why else reason)], reanchor=True)
    return log
