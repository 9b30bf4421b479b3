"""`sealer audit`: check the hash-chained audit log, and read figures and flags out of it. Needs no key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._common import CONTEXT, AuditedGroup, F, emit_json, env_filter_option, note, output_option


@click.group(cls=AuditedGroup, context_settings=CONTEXT)
def audit() -> None:
    """The audit trail the CLI and the controller write (see docs/controller.md)."""


@audit.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--head",
    metavar="HASH",
    help="A line hash recorded elsewhere (a previous verify, the controller's sealer_audit_head_info); "
    "fails if it is no longer in the log.",
)
@click.option(
    "--reanchor",
    is_flag=True,
    help="After you have looked into a failed anchor check (a log moved, rotated or restored on purpose): "
    "accept FILE as it is, write an `anchor` entry to it and anchor that.",
)
@output_option
def verify(file: Path | None, head: str | None, reanchor: bool, output: str) -> None:
    """Check FILE (default: the audit log the CLI writes) line by line: any edited, removed,
    reordered or truncated line fails (exit 1), naming the first bad line. The log is also
    compared with the anchor this user's sealer keeps for it, which catches a log cut off at its
    end, emptied, restored from an older copy or deleted and created again."""
    from .._audit import AuditInvalid, default_path, load_anchor
    from .._audit import verify as verify_log
    from ..errors import UsageError

    if file is None:
        file = default_path()
        if file is None:
            raise UsageError("SEALER_AUDIT_LOG is off, so there is no default audit log", hint="name the FILE")
    wanted = head.strip().lower() if head else None
    if reanchor:
        from .._audit import reanchor as reanchor_log

        log = reanchor_log(file, head=wanted)
        for w in log.warnings:
            note(w)
        assert log.last is not None
        if output == "json":
            emit_json({"file": str(file), "anchored": {"entry": log.last.entries, "hash": log.last.hash}})
        else:
            click.echo(f"{file}: anchored at entry {log.last.entries}, head {log.last.hash}")
        return
    result = verify_log(file, head=wanted, anchor=load_anchor(file))
    if output == "json":
        emit_json(result.to_dict())
    if not result.ok:
        raise AuditInvalid(result.error or "invalid", file=str(file), hint=result.hint)
    for n in result.torn:
        note(f"warning: {file}: line {n}: torn (a write was cut short); the entry after it chains to its bytes")
    if output == "text":
        parts = [f"{file}: ok", f"{result.lines - len(result.torn)} entries"]
        if result.torn:
            parts.append(f"{len(result.torn)} torn line{'s' if len(result.torn) > 1 else ''}")
        parts.append(f"head {result.head or '(empty log)'}")
        if result.anchor is not None:
            parts.append(f"anchored entry {result.anchor.entry} in place")
        elif wanted is None:
            parts.append("no anchor (this user's sealer never wrote it): check the head with --head")
        click.echo(", ".join(parts))


def _since_option(default: str | None) -> Callable[[F], F]:
    shown = f" (default: {default})" if default else " (default: the whole log)"
    option: Callable[[F], F] = click.option(
        "--since",
        metavar="DURATION|TIME",
        default=default,
        help=f"The window: entries from this long ago (90s, 12h, 30d) or this time (ISO 8601) on{shown}.",
    )
    return option


def _log_file(file: Path | None) -> Path:
    """FILE, else the log the CLI writes."""
    from .._audit import default_path
    from ..errors import UsageError

    if file is not None:
        return file
    path = default_path()
    if path is None:
        raise UsageError("SEALER_AUDIT_LOG is off, so there is no default audit log", hint="name the FILE")
    return path


def _repository_config() -> Any:
    """The configuration of the repository around the current directory, or None outside one."""
    from .._config import Config, find_root

    root = find_root(Path.cwd())
    return Config.load(root) if root is not None else None


@audit.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_since_option(None)
@env_filter_option
@output_option
def stats(file: Path | None, since: str | None, env: str | None, output: str) -> None:
    """Per environment: key rotations and the time from `keys rotate` to `keys retire`, unseals by
    actor and host, failed unseals by reason (from FILE, default: the CLI's log), and the age of
    every sealed value of the repository here. The log is verified first; figures from a log that
    does not verify are printed with a warning, and the exit status is 1."""
    import time

    from .._audit import AuditInvalid
    from .._audit.reading import since_time
    from .._audit.stats import audit_stats

    log = _log_file(file)
    now = time.time()
    start = since_time(since, now) if since is not None else None
    result = audit_stats(log, config=_repository_config(), since=start, env=env, now=now)
    if output == "json":
        emit_json(result.to_dict())
    else:
        for line in result.text_lines():
            click.echo(line)
    for n in result.notes:
        note(n)
    if not result.verified:
        v = result.verification
        raise AuditInvalid(f"the log does not verify: {v.error}; the figures may be forged", file=str(log), hint=v.hint)


@audit.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_since_option("1d")
@env_filter_option
@output_option
def review(file: Path | None, since: str, env: str | None, output: str) -> None:
    """Flag what to look at in the window: unseals of an environment by an actor or from a host
    not seen unsealing it before the window, unseals outside `audit.review.hours` of .sealer.yaml,
    bursts of failed unseals (`audit.review.burst`), and a log that does not verify. Exits 1 when
    anything is flagged, so CI can gate on it."""
    import time

    from .._audit.reading import since_time
    from .._audit.review import audit_review

    cfg = _repository_config()
    now = time.time()
    result = audit_review(
        _log_file(file), since=since_time(since, now), settings=cfg.review if cfg else None, env=env, now=now
    )
    if output == "json":
        emit_json(result.to_dict())
    else:
        for line in result.text_lines():
            click.echo(line)
    if not result.ok:
        raise click.exceptions.Exit(1)
