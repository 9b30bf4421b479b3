"""Shared CLI plumbing: options, the repository lookup, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The commands click resolved for this run, outermost first: the failure audit line is named
# after the innermost one's declared event, never after a word of argv (`--actor alice` is not one).
INVOKED: list[click.Command] = []


class AuditedGroup(click.Group):
    """A group that records which subcommand runs, for the audit log."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            INVOKED.append(cmd)
        return name, cmd, rest


def identity_option(f: F) -> F:
    return click.option(
        "-i",
        "--identity",
        "identities",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Identity (private key) file; repeatable. Else SEALER_IDENTITY, SEALER_IDENTITY_FILE, "
        "SEALER_IDENTITY_COMMAND, then ~/.config/sealer/identities/.",
    )(f)


def output_option(f: F) -> F:
    return click.option(
        "--output",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output for people or for scripts.",
    )(f)


def env_option(f: F) -> F:
    return click.option(
        "--env", "env", metavar="ENV", help="Environment; by default the one whose path rule covers the file."
    )(f)


def only_env_option(f: F) -> F:
    return click.option(
        "--env",
        "env",
        metavar="ENV",
        help="Only this environment: named files must be sealed for it; directories are filtered.",
    )(f)


def env_filter_option(f: F) -> F:
    return click.option("--env", "env", metavar="ENV", help="Only this environment (default: all).")(f)


def key_out_options(default: str, *, what: str = "the private key") -> Callable[[F], F]:
    """`--out` and `--force` of a command that writes a private key: to `default` unless told, never
    inside the repository unless forced (`_fsio.refuse_inside`)."""

    def options(f: F) -> F:
        f = click.option("--force", is_flag=True, help="Allow writing the private key inside the repository.")(f)
        return click.option(
            "--out",
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"Where to write {what} (default: {default}).",
        )(f)

    return options


def audit(event: str, **fields: Any) -> None:
    """One line in the audit log (never a value), after the command's work. A log that cannot be
    written warns on stderr and does not undo that work (which git shows, for seal, set, reseal
    and the key commands)."""
    from .._audit import try_record

    warning = try_record(event, repo=Path.cwd(), **fields)
    if warning:
        note(warning)


def audit_many(events: list[Any]) -> None:
    """`audit` for many events in one append (reseal)."""
    from .._audit import try_record_events

    warning = try_record_events(events)
    if warning:
        note(warning)


def audit_release(events: list[Any], *, withheld: str = "nothing was unsealed") -> None:
    """The audit lines of plaintext about to leave (unseal, exec), written before it does: a log
    that cannot be written stops the command (`_audit.record_release`: fail closed, unless
    SEALER_AUDIT=best-effort)."""
    from .._audit import record_release

    warning = record_release(events, withheld=withheld)
    if warning:
        note(warning)


def write_output(text: str, out: Path | None, *, mode: int | None = None) -> None:
    """A command's result: to stdout, or atomically to `-o OUT` (`-` is stdout too)."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .._fsio import atomic_write

    atomic_write(out, text.encode(), mode=mode)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def note(message: str) -> None:
    """A status line for people, on stderr so stdout stays clean for pipes."""
    click.echo(message, err=True)


def emit_rows(rows: list[dict[str, Any]], output: str, line: Callable[[dict[str, Any]], str], *, empty: str) -> None:
    """A listing: the rows as JSON, else one `line` a row, or the note `empty` when there is none."""
    if output == "json":
        emit_json(rows)
    elif not rows:
        note(empty)
    else:
        for r in rows:
            click.echo(line(r))


def is_tty() -> bool:
    return sys.stderr.isatty()


def repo_config(anchor: Path | None = None) -> Any:
    from .._config import load_config

    return load_config(anchor)
