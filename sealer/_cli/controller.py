"""`sealer controller`: follow a branch and keep a target unsealed. Needs the private keys."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import click

from ._common import CONTEXT, identity_option

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Duration(click.ParamType):  # type: ignore[type-arg]
    """`250ms`, `30s`, `5m`, `1h`, or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            m = _DURATION.fullmatch(str(value).strip())
            if not m:
                self.fail(f"{value!r} is not a duration (e.g. 500ms, 30s, 5m, 1h)", param, ctx)
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if seconds <= 0:
            self.fail("must be more than zero", param, ctx)
        return seconds


def _default_state_dir(repo: str, branch: str, envs: tuple[str, ...]) -> Path:
    """One state dir per (repository, branch, environments), under $XDG_STATE_HOME/sealer."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    key = hashlib.sha256("\0".join([repo, branch, *sorted(envs)]).encode()).hexdigest()[:12]
    return Path(base) / "sealer" / "controller" / key


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
) -> None:
    """Follow BRANCH of REPO and keep TARGET rendered from its sealed files, all or nothing.

    Each cycle fetches the branch; a new head that descends from the applied commit is verified
    and unsealed in full, rendered into a new directory and swapped in. Any failure leaves the
    last good output in place. SIGTERM ends the loop after the current cycle (exit 0).
    See docs/controller.md.
    """
    import signal
    import threading

    from .._controller.errors import SyncFailed
    from .._controller.http import DEFAULT_LISTEN, HealthServer, Metrics, parse_listen
    from .._controller.log import EventLog
    from .._controller.sync import Controller, Settings
    from .._controller.targets import parse_target
    from ..errors import UsageError

    envs = tuple(dict.fromkeys(e for item in envs for e in item.split()))
    if audit_log is not None and str(audit_log).lower() in ("off", "none", "-"):
        raise UsageError("the controller always keeps an audit log", hint="give --audit-log a file, or leave it out")
    log = EventLog()
    tgt = parse_target(target, log=log, cmd_timeout=cmd_timeout)
    tgt.check()
    address = parse_listen(listen if listen is not None else ("none" if once else DEFAULT_LISTEN))
    settings = Settings(
        repo=repo,
        branch=branch,
        envs=envs,
        target=tgt,
        state_dir=state_dir or _default_state_dir(repo, branch, envs),
        identity_files=identities,
        allow_rollback=allow_rollback,
        audit_log=audit_log,
        actor=actor,
        workers=workers or max(1, min(os.cpu_count() or 1, 4)),
    )
    metrics = Metrics()
    ctl = Controller(settings, metrics=metrics, log=log)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log("signal", signal=signal.Signals(signum).name, detail="finishing the current cycle, then exiting")
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        if address is not None:
            server = HealthServer(address, ctl.ready, metrics)
            server.start()
            host, port = server.address
            log("listening", address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        code = ctl.run(interval=interval, max_backoff=max_backoff, once=once, stop=stop)
    finally:
        if server is not None:
            server.stop()
        ctl.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code != 0:
        last = ctl.last
        detail = last.message if last is not None and last.message else "see the log above"
        raise SyncFailed(f"sync failed ({last.reason if last else 'unknown'}): {detail}")
