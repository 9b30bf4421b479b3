"""The `sealer` command: a thin layer over the library.

Errors are mapped to exit codes here (click's own usage errors in `group`): 0 ok, 1 failure, 2
usage. Heavy modules are imported inside commands, and `sealer unseal` runs without importing click
at all (`direct`), so the deploy-time command starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import SealerError
from . import direct

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
    "krm": "krm:krm",
}

# The commands resolved for this run, outermost first (click's group records them; so does the
# direct path): the failure audit line is named after the innermost one's declared event, never
# after a word of argv (`--actor alice` is not one).
INVOKED: list[str] = []

# Each command's audit event, where it is not the command's own name; None writes no line
# (a failed `audit verify` must not add to the log it reads; the controller writes its own).
EVENTS: dict[str, str | None] = {
    "keys generate": "keygen",
    "keys add": "add-key",
    "keys revoke-before": "revoke",
    "audit": None,
    "controller": None,
    "krm": "unseal",  # every item krm opens is an unseal, audited as one
    "krm install-plugin": "install-plugin",
}


def run(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code. One-line errors, never a traceback (unless SEALER_DEBUG=1).

    `sealer unseal` with arguments click would read the same way runs without click (`direct`);
    everything else goes through the click group (`group`), which maps click's own usage errors.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        command = direct.run(args)
        if command is not None:
            INVOKED.append(args[0])
            command()
            return 0
        from .group import invoke

        return invoke(args)
    except SealerError as e:
        _audit_failure(e)
        return _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 1  # the reader went away (e.g. `| head`); nothing to say
    except Exception as e:
        if os.environ.get("SEALER_DEBUG") == "1":
            raise
        # The message of an unexpected exception could echo input; print only its type.
        return _fail(f"internal error ({type(e).__name__}); rerun with SEALER_DEBUG=1 for details and report it", 1)


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
    names = INVOKED  # the subcommands that ran, outermost first
    if not names:
        return
    path = " ".join(names)
    event = EVENTS.get(path, EVENTS.get(names[0], names[-1]))
    if event is None or not event.replace("-", "").isalnum():
        return
    from .._audit import try_record
    from .._audit.reasons import reason_for, tagged

    # A broken audit log must not hide the real error: try_record returns a warning, never raises.
    reason = tagged(reason_for(err), str(err))
    try_record(event, result="fail", env=_env_of(err.file), file=err.file, reason=reason, repo=Path.cwd())


def _env_of(file: str | None) -> str | None:
    """The environment whose path rule covers a failing file, for its audit line (`sealer audit
    stats` counts failures per environment); None when there is no such file, repository or rule.
    Looking it up must never replace the error being reported, so any failure here is None."""
    if not file or os.path.normpath(file) != file or not Path(file).parent.is_dir():
        return None  # a label built from a document's name (krm's "stdin document 0 (…)") is no path
    try:
        from .._config import load_config

        cfg = load_config(Path(file))
        rel = cfg.relpath(Path(file), env="")
        owner = cfg.env_for(rel) if rel is not None else None
    except Exception:  # a broken .sealer.yaml is often the error being reported
        return None
    return owner.name if owner is not None else None


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"sealer: error: {message}\n")
    return code
