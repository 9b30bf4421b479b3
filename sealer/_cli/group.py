"""The click group: every command but the direct path's (`direct`). Maps click's own errors (usage: exit
2) to exit codes; sealer's errors are mapped by the caller, `run` in `__init__`."""

from __future__ import annotations

import os
import sys

import click

from . import COMMANDS, _fail
from ._common import CONTEXT, AuditedGroup


class LazyGroup(AuditedGroup):
    """click's documented lazy-loading group: subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        import importlib

        module, attr = target.split(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="sealer", message="sealer %(version)s")
@click.option(
    "--actor", envvar="SEALER_ACTOR", metavar="NAME", help="Who to name in the audit log (default: user@host)."
)
def cli(actor: str | None) -> None:
    """Sealed secrets for GitOps.

    Developers seal values with an environment's public key and commit the sealed YAML; deploy
    tooling holds the private keys and unseals at deploy time. See README.md and docs/format.md.
    """
    if actor:
        os.environ["SEALER_ACTOR"] = actor  # read by the audit log


def invoke(args: list[str]) -> int:
    """Run `args` through click; returns the exit code. click's usage errors print its usage line."""
    try:
        rv = cli.main(args=args, prog_name="sealer", standalone_mode=False)
    except click.exceptions.Abort:
        return _fail("aborted", 1)
    except click.ClickException as e:
        ctx = getattr(e, "ctx", None)
        usage = f"{ctx.get_usage()}\nTry '{ctx.command_path} --help' for help.\n" if ctx else ""
        sys.stderr.write(usage)
        return _fail(e.format_message(), e.exit_code)
    except click.exceptions.Exit as e:
        return e.exit_code
    return rv if isinstance(rv, int) else 0  # click returns ctx.exit(N)'s code when not standalone
