"""The controller as a service: options to settings, the HTTP server, signals, the loop, shutdown.

`sealer controller` only parses its flags into `ControllerOptions` and calls `run_controller`, so
a Python program that imports it gets the command's behaviour exactly:

    from sealer._controller import ControllerOptions, run_controller

    report = run_controller(ControllerOptions(repo="git@…", envs=("prod",), target="dir:/out", once=True))
    raise SystemExit(report.exit_code)

Errors of the options themselves (a bad target, listen address or duration, a state dir another
controller holds) are raised as `sealer.errors.SealerError`s before anything is fetched; a failed
sync is never raised: the report says what happened.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .._audit import is_off
from ..errors import UsageError
from .errors import SyncFailed
from .http import DEFAULT_LISTEN, HealthServer, Metrics, parse_listen
from .log import EventLog
from .sync import MAX_TOTAL_BYTES, Controller, Result, Settings
from .targets import parse_target

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"(\d+)\s*(|B|KiB|MiB|GiB|K|M|G)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
MAX_WORKERS = 64


def parse_interval(value: str | float) -> float:
    """`250ms`, `30s`, `5m`, `1h`, `0.5s`, or plain seconds (a number or its text): seconds, more
    than zero. Raises ValueError. (Unlike `_config.parse_duration`, which reads policy ages such as
    `90d`, this takes fractions and milliseconds: loop timings, not ages.)"""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(str(value).strip())
        if not m:
            raise ValueError(f"{value!r} is not a duration (e.g. 500ms, 30s, 5m, 1h)")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds > 0:
        raise ValueError("must be more than zero")
    return seconds


def parse_size(value: str | int) -> int:
    """`256MiB`, `1GiB`, `512K`, or plain bytes: a byte count, more than zero (units are powers
    of 1024). Raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = _SIZE.fullmatch(str(value).strip())
        if not m:
            raise ValueError(f"{value!r} is not a size (e.g. 256MiB, 1GiB, or bytes)")
        size = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not size > 0:
        raise ValueError("must be more than zero")
    return size


@dataclass(frozen=True)
class ControllerOptions:
    """What `sealer controller`'s flags say, as plain values (durations in seconds)."""

    repo: str  # a local path or a URL git understands
    envs: tuple[str, ...]  # environment names; an item may hold several, space-separated
    target: str  # dir:PATH, files:PATH or cmd:COMMAND
    branch: str = "main"
    identities: tuple[str, ...] = ()  # identity files; empty: the usual sources (SEALER_IDENTITY…)
    interval: float = 30.0
    max_backoff: float = 300.0
    listen: str | None = None  # HOST:PORT or "none"; None: 127.0.0.1:9808, or none with `once`
    once: bool = False
    allow_rollback: bool = False
    state_dir: Path | None = None  # None: $XDG_STATE_HOME/sealer/controller/ID
    audit_log: Path | None = None  # None: STATE_DIR/audit.log
    actor: str | None = None
    workers: int | None = None  # None: the CPUs, at most 4
    cmd_timeout: float = 300.0
    fetch_timeout: float = 120.0  # a fetch is killed after this, or at SIGTERM
    max_total_bytes: int = MAX_TOTAL_BYTES  # the environments' files of one commit, together


@dataclass(frozen=True)
class ControllerReport:
    """How a run ended. `exit_code` is the command's: 0, or 1 after a failed `once` sync."""

    exit_code: int
    last: Result | None  # the last cycle's result (None: no cycle ran)
    applied: str | None  # the commit applied when the run ended
    address: tuple[str, int] | None  # where /healthz, /readyz and /metrics were served

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def error(self) -> SyncFailed | None:
        """The failure as the CLI reports it (`sync failed (REASON): …`), or None."""
        if self.ok:
            return None
        last = self.last
        detail = last.message if last is not None and last.message else "see the log above"
        return SyncFailed(f"sync failed ({last.reason if last else 'unknown'}): {detail}")


def default_state_dir(repo: str, branch: str, envs: tuple[str, ...], environ: Mapping[str, str] | None = None) -> Path:
    """One state dir per (repository, branch, environments), under $XDG_STATE_HOME/sealer."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    key = hashlib.sha256("\0".join([repo, branch, *sorted(envs)]).encode()).hexdigest()[:12]
    return Path(base) / "sealer" / "controller" / key


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def build_settings(options: ControllerOptions, *, log: EventLog, environ: Mapping[str, str] | None = None) -> Settings:
    """Check the options and turn them into the sync's `Settings`; the target is checked too
    (an unusable one is refused here, before anything is fetched)."""
    envs = tuple(dict.fromkeys(e for item in options.envs for e in item.split()))
    if not envs:
        raise UsageError("no environment given", hint="name one or more with --env")
    for name in ("interval", "max_backoff", "cmd_timeout", "fetch_timeout", "max_total_bytes"):
        if not getattr(options, name) > 0:
            raise UsageError(f"{name} must be more than zero")
    if options.workers is not None and not 1 <= options.workers <= MAX_WORKERS:
        raise UsageError(f"workers must be between 1 and {MAX_WORKERS}")
    audit_log = Path(options.audit_log) if options.audit_log is not None else None
    if audit_log is not None and is_off(str(audit_log)):
        raise UsageError(
            f"the controller always keeps an audit log: SEALER_AUDIT_LOG or --audit-log cannot be {str(audit_log)!r}",
            hint="unset it for STATE_DIR/audit.log, or name a file",
        )
    target = parse_target(options.target, log=log, cmd_timeout=options.cmd_timeout)
    target.check()
    state_dir = options.state_dir
    return Settings(
        repo=options.repo,
        branch=options.branch,
        envs=envs,
        target=target,
        state_dir=Path(state_dir)
        if state_dir is not None
        else default_state_dir(options.repo, options.branch, envs, environ),
        identity_files=tuple(options.identities),
        allow_rollback=options.allow_rollback,
        audit_log=audit_log,
        actor=options.actor,
        workers=options.workers or default_workers(),
        max_total_bytes=int(options.max_total_bytes),
        fetch_timeout=float(options.fetch_timeout),
    )


def run_controller(
    options: ControllerOptions,
    *,
    log: EventLog | None = None,
    stop: threading.Event | None = None,
    environ: Mapping[str, str] | None = None,
    handle_signals: bool = True,
) -> ControllerReport:
    """Run the controller until `stop` is set or SIGTERM/SIGINT arrives (the running cycle
    finishes first), or for one cycle with `options.once`. Serves HTTP unless `listen` is none.

    Signal handlers are installed only from the main thread, and the previous ones are restored on
    return; from another thread, set `stop` to end the run. `environ` is where the private key
    variables (SEALER_IDENTITY…) and XDG_STATE_HOME are read (default: os.environ)."""
    from .._identities import protect_process  # not dumpable; SEALER_IDENTITY* out of the environment

    protect_process(environ)
    log = log or EventLog()
    stop = stop or threading.Event()
    settings = build_settings(options, log=log, environ=environ)
    address = parse_listen(
        options.listen if options.listen is not None else ("none" if options.once else DEFAULT_LISTEN)
    )
    metrics = Metrics()
    ctl = Controller(settings, metrics=metrics, log=log, environ=environ)
    previous = _catch_signals(stop, log) if handle_signals else {}
    server = None
    try:
        if address is not None:
            server = HealthServer(address, ctl.ready, metrics, log=log)
            server.start()
            address = server.address
            host, port = address
            log("listening", address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        code = ctl.run(interval=options.interval, max_backoff=options.max_backoff, once=options.once, stop=stop)
    finally:
        if server is not None:
            server.stop()
        ctl.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return ControllerReport(exit_code=code, last=ctl.last, applied=ctl.state.commit, address=address)


def _catch_signals(stop: threading.Event, log: EventLog) -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT set `stop`; returns the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # Python delivers signals to the main thread only

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log("signal", signal=signal.Signals(signum).name, detail="finishing the current cycle, then exiting")
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    for s in (signal.SIGTERM, signal.SIGINT):
        old = signal.signal(s, on_signal)
        if old is not None:  # None: a handler not set from Python, which cannot be put back
            previous[s] = old
    return previous
