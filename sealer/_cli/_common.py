"""Shared CLI plumbing: options, the repository lookup, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import INVOKED
from .direct import IDENTITY, ONLY_ENV, Opt
from .direct import audit_release as audit_release  # re-exported: the output helpers every command uses
from .direct import note as note
from .direct import write_output as write_output

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class AuditedGroup(click.Group):
    """A group that records which subcommand runs, for the audit log."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None:
            INVOKED.append(cmd.name or "")
        return name, cmd, rest


def click_option(opt: Opt) -> Callable[[F], F]:
    """A click option from `direct`'s table, the one home of the options the direct path reads too."""
    kind: Any = None
    if opt.choices is not None:
        kind = click.Choice(list(opt.choices))
    elif opt.path:
        kind = click.Path(dir_okay=opt.dir_okay, allow_dash=opt.allow_dash, path_type=Path if opt.as_path else None)
    return click.option(
        *opt.names,
        opt.dest,
        help=opt.help,
        metavar=opt.metavar,
        is_flag=opt.flag,
        multiple=opt.multiple,
        type=kind,
        default=False if opt.flag else opt.default,
        show_default=opt.default is not None,
    )


identity_option = click_option(IDENTITY)
only_env_option = click_option(ONLY_ENV)


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


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


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
