"""The `sealer` command: a thin click layer over the library.

Errors are mapped to exit codes here and only here: 0 ok, 1 failure, 2 usage. Heavy modules are
imported inside commands, so `sealer --help` and `sealer unseal` start fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import SealerError
from ._common import CONTEXT, INVOKED, AuditedGroup

# name -> "module:attribute" under sealer._cli. A command's module is imported only when that command
# runs (or --help lists it), so `sealer unseal` does not pay for the controller, scan or interop code.
COMMANDS = {
    "init": "repo:init",
    "keys": "keys:keys",
    "seal": "seal:seal",
    "set": "seal:set_",
    "unseal": "unseal:unseal",
    "exec": "unseal:exec_",
    "reseal": "rotation:reseal",
    "status": "rotation:status",
    "show": "show:show",
    "import": "interop:import_",
    "export": "interop:export",
    "check": "guard:check",
    "refs": "refs:refs",
    "scan": "guard:scan",
    "hook": "guard:hook",
    "signers": "guard:signers",
    "controller": "controller:controller",
    "audit": "audit:audit",
}

# Each command's audit event, where it is not the command's own name; None writes no line
# (a failed `audit verify` must not add to the log it reads; the controller writes its own).
EVENTS: dict[str, str | None] = {
    "keys generate": "keygen",
    "keys add": "add-key",
    "keys revoke-before": "revoke",
    "audit": None,
    "controller": None,
}


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
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
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


def run(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code. One-line errors, never a traceback (unless SEALER_DEBUG=1)."""
    try:
        rv = cli.main(args=argv, prog_name="sealer", standalone_mode=False)
    except SealerError as e:
        _audit_failure(e)
        return _fail(str(e), e.exit_code)
    except click.exceptions.Abort:
        return _fail("aborted", 1)
    except click.ClickException as e:
        ctx = getattr(e, "ctx", None)
        usage = f"{ctx.get_usage()}\nTry '{ctx.command_path} --help' for help.\n" if ctx else ""
        sys.stderr.write(usage)
        return _fail(e.format_message(), e.exit_code)
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 1  # the reader went away (e.g. `| head`); nothing to say
    except Exception as e:
        if os.environ.get("SEALER_DEBUG") == "1":
            raise
        # The message of an unexpected exception could echo input; print only its type.
        return _fail(f"internal error ({type(e).__name__}); rerun with SEALER_DEBUG=1 for details and report it", 1)
    return rv if isinstance(rv, int) else 0  # click returns ctx.exit(N)'s code when not standalone


def main() -> None:
    """Console entry point.

    Ends with os._exit after flushing: every write sealer makes is already fsynced, and skipping the
    interpreter's teardown of ~150 modules saves about 10 ms of a ~60 ms cold start.
    """
    code = run()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)


def _audit_failure(err: SealerError) -> None:
    """Every failure goes to the audit log, named by the command that ran (its declared event)."""
    names = [c.name or "" for c in INVOKED]  # the subcommands click resolved, outermost first
    if not names:
        return
    path = " ".join(names)
    event = EVENTS.get(path, EVENTS.get(names[0], names[-1]))
    if event is None or not event.replace("-", "").isalnum():
        return
    from .._audit import try_record

    # A broken audit log must not hide the real error: try_record returns a warning, never raises.
    try_record(event, result="fail", file=err.file, reason=str(err), repo=Path.cwd())


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"sealer: error: {message}\n")
    return code
