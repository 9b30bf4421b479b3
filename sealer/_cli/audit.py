"""`sealer audit`: check the hash-chained audit log. Needs no key."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, AuditedGroup, emit_json, note, output_option


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def audit() -> None:
    """The audit trail the CLI and the controller write (see docs/controller.md)."""


@audit.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--head",
    metavar="HASH",
    help="A line hash recorded elsewhere (a previous verify, the controller's sealer_audit_head_info); "
    "fails if it is no longer in the log.",
)
@click.option(
    "--reanchor",
    is_flag=True,
    help="After you have looked into a failed anchor check (a log moved, rotated or restored on purpose): "
    "accept FILE as it is, write an `anchor` entry to it and anchor that.",
)
@output_option
def verify(file: Path | None, head: str | None, reanchor: bool, output: str) -> None:
    """Check FILE (default: the audit log the CLI writes) line by line: any edited, removed,
    reordered or truncated line fails (exit 1), naming the first bad line. The log is also
    compared with the anchor this user's sealer keeps for it, which catches a log cut off at its
    end, emptied, restored from an older copy or deleted and created again."""
    from .._audit import AuditInvalid, default_path, load_anchor
    from .._audit import verify as verify_log
    from ..errors import UsageError

    if file is None:
        file = default_path()
        if file is None:
            raise UsageError("SEALER_AUDIT_LOG is off, so there is no default audit log", hint="name the FILE")
    wanted = head.strip().lower() if head else None
    if reanchor:
        from .._audit import reanchor as reanchor_log

        log = reanchor_log(file, head=wanted)
        for w in log.warnings:
            note(w)
        assert log.last is not None
        if output == "json":
            emit_json({"file": str(file), "anchored": {"entry": log.last.entries, "hash": log.last.hash}})
        else:
            click.echo(f"{file}: anchored at entry {log.last.entries}, head {log.last.hash}")
        return
    result = verify_log(file, head=wanted, anchor=load_anchor(file))
    if output == "json":
        emit_json(result.to_dict())
    if not result.ok:
        raise AuditInvalid(result.error or "invalid", file=str(file), hint=result.hint)
    for n in result.torn:
        note(f"warning: {file}: line {n}: torn (a write was cut short); the entry after it chains to its bytes")
    if output == "text":
        parts = [f"{file}: ok", f"{result.lines - len(result.torn)} entries"]
        if result.torn:
            parts.append(f"{len(result.torn)} torn line{'s' if len(result.torn) > 1 else ''}")
        parts.append(f"head {result.head or '(empty log)'}")
        if result.anchor is not None:
            parts.append(f"anchored entry {result.anchor.entry} in place")
        elif wanted is None:
            parts.append("no anchor (this user's sealer never wrote it): check the head with --head")
        click.echo(", ".join(parts))
