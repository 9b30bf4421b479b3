"""`sealer audit review`: the entries of a window that the practice says a person should look at.

It flags, in the window (`since` to now):

- `new-actor`, `new-host`: unseals of an environment by an actor (or from a host) that had not
  unsealed *that environment* in the log before the window. An environment with no unseal before
  the window has no history to compare with: it is listed in `unjudged`, not flagged, so the first
  entries of a new log are not all flagged;
- `outside-hours`: unseals outside `audit.review.hours` of `.sealer.yaml` (in its `timezone`);
- `failure-burst`: `burst.failures` or more failed unseals of one environment within
  `burst.within`, one flag per burst (overlapping windows are one burst);
- `unverified`: the log does not verify (`sealer audit verify`), so nothing in it can be trusted.

Flags group entries (per environment and actor, host or burst) and name the first entry's `seq`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .reading import LogEntry, read_log

if TYPE_CHECKING:
    from .._config import ReviewSettings
    from .verification import Verification

KINDS = ("unverified", "new-actor", "new-host", "outside-hours", "failure-burst")


@dataclass(frozen=True)
class Flag:
    """Something to look at: `count` entries of `env` from `first` to `last` (Unix seconds), the
    first of them entry `seq` of the log."""

    kind: str
    env: str | None
    message: str
    count: int = 0
    seq: int | None = None
    first: float | None = None
    last: float | None = None
    actor: str | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from .._show import iso

        return {
            "kind": self.kind,
            "env": self.env,
            "message": self.message,
            "count": self.count,
            "seq": self.seq,
            "first": iso(int(self.first)) if self.first is not None else None,
            "last": iso(int(self.last)) if self.last is not None else None,
            "actor": self.actor,
            "host": self.host,
        }


@dataclass
class AuditReview:
    log: str
    verification: Verification
    since: float
    now: float
    settings: ReviewSettings
    flags: list[Flag] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)  # environments without unseals before the window

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        from .._show import iso

        hours = self.settings.hours
        return {
            "log": self.log,
            "ok": self.ok,
            "verified": self.verification.ok,
            "since": iso(int(self.since)),
            "now": iso(int(self.now)),
            "hours": _hours_text(hours) if hours is not None else None,
            "timezone": self.settings.timezone,
            "burst": {"failures": self.settings.burst_failures, "within_seconds": self.settings.burst_within},
            "flags": [f.to_dict() for f in self.flags],
            "unjudged": self.unjudged,
        }

    def text_lines(self) -> list[str]:
        from .._show import iso

        lines = [f"{f.env or '-'}: {f.kind}: {f.message}" for f in self.flags]
        if self.unjudged:
            lines.append(
                f"note: no unseals before {iso(int(self.since))} in {', '.join(self.unjudged)}: "
                "new actors and hosts there are not judged"
            )
        lines.append(f"{self.log}: {len(self.flags)} flag(s) since {iso(int(self.since))}")
        return lines


def audit_review(
    log: str | os.PathLike[str],
    *,
    since: float,
    settings: ReviewSettings | None = None,
    env: str | None = None,
    now: float | None = None,
) -> AuditReview:
    """Review the entries of the log at `log` from `since` (Unix seconds) on, against what came
    before; `settings`: `Config.review` (default: no hours, 5 failures within 10 minutes)."""
    from .._config import ReviewSettings

    settings = settings or ReviewSettings()
    now = time.time() if now is None else now
    checked, entries = read_log(log)
    entries = [e for e in entries if env is None or e.env == env]
    before = [e for e in entries if e.time < since]
    window = [e for e in entries if e.time >= since]
    review = AuditReview(os.fspath(log), checked, since, now, settings)
    if not checked.ok:
        review.flags.append(Flag("unverified", None, f"the log does not verify: {checked.error}"))
    review.flags += _new(before, window, review.unjudged)
    if settings.hours is not None:
        review.flags += _outside_hours(window, settings.hours, settings.timezone)
    review.flags += _bursts(window, settings.burst_failures, settings.burst_within)
    return review


def _new(before: list[LogEntry], window: list[LogEntry], unjudged: list[str]) -> list[Flag]:
    """Unseals by an actor, or from a host, that had not unsealed the environment before."""
    seen: dict[str | None, tuple[set[str], set[str]]] = {}
    for e in before:
        if e.unsealed:
            actors, hosts = seen.setdefault(e.env, (set(), set()))
            actors.add(e.actor)
            if e.host is not None:
                hosts.add(e.host)
    flags = []
    unseals = [e for e in window if e.unsealed]
    for env in sorted({e.env for e in unseals}, key=lambda x: x or ""):
        if env not in seen:
            unjudged.append(env or "-")
            continue
        actors, hosts = seen[env]
        mine = [e for e in unseals if e.env == env]
        for actor, group in _groups((e for e in mine if e.actor not in actors), lambda e: e.actor):
            msg = f"{actor} unsealed {len(group)} file(s) and had not unsealed {env} before"
            flags.append(_flag("new-actor", env, msg, group, actor=actor))
        for host, group in _groups((e for e in mine if e.host is not None and e.host not in hosts), _host):
            msg = f"{len(group)} file(s) unsealed from {host}, which had not unsealed {env} before"
            flags.append(_flag("new-host", env, msg, group, host=host))
    return flags


def _outside_hours(window: list[LogEntry], hours: tuple[int, int], zone: str) -> list[Flag]:
    tz = _zone(zone)
    start, end = hours

    def inside(e: LogEntry) -> bool:
        local = dt.datetime.fromtimestamp(e.time, tz)
        minute = local.hour * 60 + local.minute
        return start <= minute < end if start < end else minute >= start or minute < end

    outside = (e for e in window if e.unsealed and not inside(e))
    flags = []
    for (env, actor), group in _groups(outside, lambda e: (e.env, e.actor)):
        msg = f"{actor} unsealed {len(group)} file(s) outside {_hours_text(hours)} {zone}"
        flags.append(_flag("outside-hours", env, msg, group, actor=actor))
    return flags


def _bursts(window: list[LogEntry], failures: int, within: int) -> list[Flag]:
    """Maximal runs of failed unseals of one environment in which some `within` seconds hold at
    least `failures` of them."""
    flags = []
    failed = [e for e in window if e.failed_unseal]
    for env, group in _groups(failed, lambda e: e.env):
        group.sort(key=lambda e: e.time)
        runs: list[tuple[int, int]] = []  # first and last index of each burst
        lo = 0
        for hi, e in enumerate(group):
            while e.time - group[lo].time > within:
                lo += 1
            if hi - lo + 1 >= failures:
                if runs and lo <= runs[-1][1]:  # overlaps the burst before: the same burst
                    runs[-1] = (runs[-1][0], hi)
                else:
                    runs.append((lo, hi))
        for a, b in runs:
            run = group[a : b + 1]
            reasons: dict[str, int] = {}
            for e in run:
                reasons[e.failure_reason] = reasons.get(e.failure_reason, 0) + 1
            why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
            msg = f"{len(run)} failed unseals within {_span(run[-1].time - run[0].time)} ({why})"
            flags.append(_flag("failure-burst", env, msg, run))
    return flags


def _groups(entries: Iterable[LogEntry], key: Callable[[LogEntry], Any]) -> list[tuple[Any, list[LogEntry]]]:
    """Entries grouped by `key`, groups in the order of their first entry."""
    out: dict[Any, list[LogEntry]] = {}
    for e in entries:
        out.setdefault(key(e), []).append(e)
    return list(out.items())


def _host(e: LogEntry) -> str | None:
    return e.host


def _flag(kind: str, env: str | None, message: str, group: list[LogEntry], **who: str | None) -> Flag:
    first = min(group, key=lambda e: (e.time, e.seq))
    return Flag(kind, env, message, len(group), first.seq, first.time, max(e.time for e in group), **who)


def _zone(name: str) -> dt.tzinfo:
    if name == "UTC":
        return dt.UTC
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def _hours_text(hours: tuple[int, int]) -> str:
    (a, b) = hours
    return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"


def _span(seconds: float) -> str:
    from .stats import span

    return span(seconds)
