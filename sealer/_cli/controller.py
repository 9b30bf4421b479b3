"""`sealer controller`: follow a branch and keep a target unsealed. Needs the private keys.

Only the flags live here; `sealer._controller.service.run_controller` does the rest (imported when
the command runs, so `sealer --help` does not load the controller).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import CONTEXT, identity_option


class Duration(click.ParamType):  # type: ignore[type-arg]
    """`250ms`, `30s`, `5m`, `1h`, or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from .._controller.service import parse_interval

        try:
            return parse_interval(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class Size(click.ParamType):  # type: ignore[type-arg]
    """`256MiB`, `1GiB`, `512K`, or plain bytes."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from .._controller.service import parse_size

        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


@click.command(context_settings=CONTEXT)
@click.option(
    "--repo",
    metavar="PATH|URL",
    required=True,
    envvar="SEALER_CONTROLLER_REPO",
    help="Git repository: a local path or a URL.",
)
@click.option(
    "--branch",
    metavar="BRANCH",
    default="main",
    show_default=True,
    envvar="SEALER_CONTROLLER_BRANCH",
    help="Branch to follow.",
)
@click.option(
    "--env",
    "envs",
    multiple=True,
    required=True,
    metavar="ENV",
    envvar="SEALER_CONTROLLER_ENV",
    help="Environment to unseal (repeatable; in the variable, space-separated).",
)
@click.option(
    "--target",
    metavar="TARGET",
    required=True,
    envvar="SEALER_CONTROLLER_TARGET",
    help="dir:PATH (manifests), files:PATH (one file per value) or cmd:COMMAND (manifests on stdin).",
)
@identity_option
@click.option(
    "--interval",
    type=Duration(),
    default="30s",
    show_default=True,
    envvar="SEALER_CONTROLLER_INTERVAL",
    help="Time between syncs.",
)
@click.option(
    "--max-backoff",
    type=Duration(),
    default="5m",
    show_default=True,
    envvar="SEALER_CONTROLLER_MAX_BACKOFF",
    help="Longest wait between retries after failures (they back off exponentially).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    envvar="SEALER_CONTROLLER_LISTEN",
    help="HOST:PORT for /healthz, /readyz and /metrics (port 0: any free port; 'none': no server). "
    "Default 127.0.0.1:9808, and none with --once.",
)
@click.option("--once", is_flag=True, help="Run one sync and exit: 0 if it succeeded, 1 if not.")
@click.option(
    "--allow-rollback",
    is_flag=True,
    help="Accept a branch head that does not descend from the applied commit (after a force-push).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SEALER_CONTROLLER_STATE_DIR",
    help="Where the git mirror, the applied commit and the default audit log live "
    "(default: $XDG_STATE_HOME/sealer/controller/ID).",
)
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SEALER_AUDIT_LOG",
    help="Audit log file (default: STATE_DIR/audit.log).",
)
@click.option("--actor", metavar="NAME", envvar="SEALER_ACTOR", help="Who the audit log names (default: user@host).")
@click.option(
    "--workers",
    metavar="N",
    type=click.IntRange(1, 64),
    envvar="SEALER_CONTROLLER_WORKERS",
    help="Processes for full renders (default: CPUs, at most 4).",
)
@click.option(
    "--cmd-timeout",
    type=Duration(),
    default="5m",
    show_default=True,
    envvar="SEALER_CONTROLLER_CMD_TIMEOUT",
    help="Time limit for a cmd: target's command.",
)
@click.option(
    "--fetch-timeout",
    type=Duration(),
    default="120s",
    show_default=True,
    envvar="SEALER_CONTROLLER_FETCH_TIMEOUT",
    help="Time limit for one git fetch (SIGTERM also cuts a running fetch short).",
)
@click.option(
    "--max-total-bytes",
    type=Size(),
    default="256MiB",
    show_default=True,
    envvar="SEALER_CONTROLLER_MAX_TOTAL_BYTES",
    help="Largest total size of a commit's sealed files for the environments; a bigger commit is refused unread.",
)
def controller(
    repo: str,
    branch: str,
    envs: tuple[str, ...],
    target: str,
    identities: tuple[str, ...],
    interval: float,
    max_backoff: float,
    listen: str | None,
    once: bool,
    allow_rollback: bool,
    state_dir: Path | None,
    audit_log: Path | None,
    actor: str | None,
    workers: int | None,
    cmd_timeout: float,
    fetch_timeout: float,
    max_total_bytes: int,
) -> None:
    """Follow BRANCH of REPO and keep TARGET rendered from its sealed files, all or nothing.

    Each cycle fetches the branch; a new head that descends from the applied commit is verified
    and unsealed in full, rendered into a new directory and swapped in. Any failure leaves the
    last good output in place. SIGTERM ends the loop after the current cycle (exit 0).
    See docs/controller.md.
    """
    from .._controller.service import ControllerOptions, run_controller

    options = ControllerOptions(
        repo=repo,
        envs=envs,
        target=target,
        branch=branch,
        identities=identities,
        interval=interval,
        max_backoff=max_backoff,
        listen=listen,
        once=once,
        allow_rollback=allow_rollback,
        state_dir=state_dir,
        audit_log=audit_log,
        actor=actor,
        workers=workers,
        cmd_timeout=cmd_timeout,
        fetch_timeout=fetch_timeout,
        max_total_bytes=max_total_bytes,
    )
    report = run_controller(options)
    if report.error is not None:
        raise report.error
