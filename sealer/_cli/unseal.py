"""`sealer unseal` and `sealer exec`: deploy-time commands. Need private keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .._unseal import Unsealed

from ._common import CONTEXT, audit_release, identity_option, note, only_env_option, write_output

_allow_env_option = click.option(
    "--allow-env",
    "allow_env",
    multiple=True,
    metavar="NAME",
    help="Let a sealed value set this variable although it changes how programs run (PATH, LD_*, …). Repeatable.",
)
_no_rules_option = click.option(
    "--no-rules",
    is_flag=True,
    help="Open files outside any sealer repository, where no environment rules (retired keys, not_before,"
    " signatures) exist. Inside a repository the rules always apply.",
)


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "k8s", "dotenv", "json"]),
    default="yaml",
    show_default=True,
    help="yaml: the files as written, sealer: blocks removed; k8s: only the Kubernetes manifests, for"
    " kubectl apply -f -; dotenv: NAME=value lines (a Secret's keys, other documents' paths in UPPER_SNAKE),"
    " shell-quoted; json: a list of {file, document, content}.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="Write plaintext to this file (mode 0600) instead of stdout.",
)
@only_env_option
@identity_option
@_no_rules_option
@_allow_env_option
def unseal(
    paths: tuple[Path, ...],
    fmt: str,
    out: Path | None,
    env: str | None,
    identities: tuple[str, ...],
    no_rules: bool,
    allow_env: tuple[str, ...],
) -> None:
    """Unseal FILE|DIR… and print the plaintext (all or nothing).

    In a directory, every YAML file holding sealed documents is taken. '-' reads one sealed file
    from stdin; it has no path, so it needs --env, and that environment's rules apply (from the
    repository of the current directory).
    """
    from .._identities import find_identities
    from .._render import render
    from .._unseal import unseal_paths

    ids = find_identities(identities)
    files, skipped = unseal_paths(paths, ids.for_kid, env=env, structured=fmt != "yaml", checked=not no_rules)
    _audit_unseal(files, None)
    text, notes = render(files, fmt, allow_env=frozenset(allow_env))
    for n in skipped + notes + [w for u in files for w in u.warnings]:
        note(n)
    write_output(text, out, mode=0o600)  # plaintext: never readable by others


class _ExecCommand(click.Command):
    """Splits argv at the first `--` before click sees it: what follows is the child's command line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta["sealer.command"] = args[i + 1 :]
            args = args[:i]
        return super().parse_args(ctx, args)


@click.command(name="exec", cls=_ExecCommand, context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@only_env_option
@identity_option
@_no_rules_option
@_allow_env_option
@click.pass_context
def exec_(
    ctx: click.Context,
    files: tuple[Path, ...],
    env: str | None,
    identities: tuple[str, ...],
    no_rules: bool,
    allow_env: tuple[str, ...],
) -> None:
    """Run a command with the unsealed values in its environment: sealer exec FILE… -- CMD [ARG…].

    Nothing is written anywhere; sealer's own SEALER_IDENTITY* variables are not passed on.
    """
    from .._identities import find_identities
    from .._render import environment
    from .._unseal import unseal_paths
    from ..errors import UsageError

    command: list[str] = ctx.meta.get("sealer.command", [])
    if not command:
        raise UsageError("no command given", hint="sealer exec FILE… -- CMD [ARG…]")
    ids = find_identities(identities)
    unsealed, skipped = unseal_paths(files, ids.for_kid, env=env, checked=not no_rules)
    _audit_unseal(unsealed, f"exec {command[0]}")
    values, notes = environment(unsealed, allow=frozenset(allow_env))
    for n in skipped + notes + [w for u in unsealed for w in u.warnings]:
        note(n)
    # The command is found with our own PATH, never one a sealed value could have set.
    import shutil  # here: shutil pulls in compression modules that unseal does not need

    program = command[0] if "/" in command[0] else shutil.which(command[0])
    if program is None:
        raise UsageError(f"command not found: {command[0]}")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_IDENTITY")}
    child_env.update(values)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, command, child_env)  # noqa: S606 - replacing ourselves is the point
    except FileNotFoundError:
        raise UsageError(f"command not found: {command[0]}") from None
    except PermissionError:
        raise UsageError(f"command not executable: {command[0]}") from None


def _reason(reason: str | None, u: Unsealed) -> str | None:
    """The audit line's reason, noting expired values released (on_expiry: warn, or --no-rules)."""
    if not u.warnings:
        return reason
    late = f"released {len(u.warnings)} expired value(s) with a warning"
    return f"{reason}; {late}" if reason else late


def _audit_unseal(files: list[Unsealed], reason: str | None) -> None:
    """One audit line per unsealed file, written in one append before any plaintext leaves (it is
    called before rendering, writing or exec): a log that cannot be written stops the command."""
    from .._audit import Event, git_head

    head = git_head(Path.cwd())
    events = [
        Event("unseal", env=u.env, file=u.source, kids=u.kids, commit=head, reason=_reason(reason, u)) for u in files
    ]
    audit_release(events, withheld="nothing was unsealed" if reason is None else "the command was not run")
