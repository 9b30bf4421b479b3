"""`sealer audit`: check the hash-chained audit log. Needs no key."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, AuditedGroup, emit_json, output_option


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def audit() -> None:
    """The audit trail the CLI and the controller write (see docs/controller.md)."""


@audit.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--head",
    metavar="HASH",
    help="A line hash noted earlier (printed by a previous verify); fails if it is no longer in the "
    "log, which is how lines cut off the end are caught.",
)
@output_option
def verify(file: Path, head: str | None, output: str) -> None:
    """Check FILE line by line: any edited, removed, reordered or truncated line fails (exit 1),
    naming the first bad line."""
    from .._audit import AuditInvalid
    from .._audit import verify as verify_log

    result = verify_log(file, head=head.strip().lower() if head else None)
    if output == "json":
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"{file}: ok, {result.lines} entries, head {result.head or '(empty log)'}")
    if not result.ok:
        raise AuditInvalid(result.error or "invalid", file=str(file))
