"""`sealer unseal` and `sealer exec`: deploy-time commands. Need private keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import direct
from ._common import CONTEXT, click_option, identity_option, note, only_env_option

_allow_env_option = click_option(direct.ALLOW_ENV)
_no_rules_option = click_option(direct.NO_RULES)


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click_option(direct.FORMAT)
@click_option(direct.OUT)
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
    direct.unseal(paths, fmt, out, env, identities, no_rules, allow_env)


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
    direct.audit_unseal(unsealed, f"exec {command[0]}")
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
