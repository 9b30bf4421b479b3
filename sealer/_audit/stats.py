"""`sealer audit stats`: rotation and access figures per environment, from what sealer already
records: the audit log (rotations, retirements, unseals, failures) and the repository's sealed
files (how old each secret is, from the seal time in its token's header, as `sealer status` reads it).

Counts cover the entries of the window (`since`); a key's time from `keys rotate` to `keys retire`
is counted when it was retired in the window, measured from the rotate that made it `retiring`,
found anywhere in the log. A rotate line names the new key in its reason (`new active key KID`);
its other key ids are the keys it made retiring. Secret ages are of the repository as it is now.
Nothing here reads a value: the log has none, and token headers are public.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .reading import LogEntry, read_log

if TYPE_CHECKING:
    from .._config import Config
    from .verification import Verification

DAY = 86400
# (upper bound in seconds, label): a value falls in the first bucket whose bound it is under.
AGE_BUCKETS: tuple[tuple[float, str], ...] = (
    (7 * DAY, "<7d"),
    (30 * DAY, "7d-30d"),
    (90 * DAY, "30d-90d"),
    (365 * DAY, "90d-365d"),
    (math.inf, ">=365d"),
)
_NEW_KEY = re.compile(r"new active key ([0-9a-f]{16})")
UNKNOWN_HOST = "(unknown)"  # an actor without `@host`


@dataclass(frozen=True)
class Spread:
    """A list of durations in seconds, summed up: how many, their mean and their maximum."""

    count: int
    mean: float | None
    max: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        if not seconds:
            return cls(0, None, None)
        return cls(len(seconds), sum(seconds) / len(seconds), max(seconds))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean_seconds": _round(self.mean), "max_seconds": _round(self.max)}


@dataclass(frozen=True)
class Ages:
    """How old an environment's sealed values are (seconds since each was sealed with fresh
    content), now. Percentiles are nearest-rank."""

    values: int
    min: float | None
    median: float | None
    p90: float | None
    max: float | None
    mean: float | None
    buckets: dict[str, int]
    max_secret_age: int | None  # the environment's policy, seconds
    over_max_secret_age: int

    @classmethod
    def of(cls, ages: Sequence[float], max_secret_age: int | None, over: int) -> Ages:
        s = sorted(max(0.0, a) for a in ages)
        buckets = {label: 0 for _bound, label in AGE_BUCKETS}
        for a in s:
            buckets[next(label for bound, label in AGE_BUCKETS if a < bound)] += 1
        if not s:
            return cls(0, None, None, None, None, None, buckets, max_secret_age, over)
        return cls(len(s), s[0], _rank(s, 0.5), _rank(s, 0.9), s[-1], sum(s) / len(s), buckets, max_secret_age, over)

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "min_seconds": _round(self.min),
            "median_seconds": _round(self.median),
            "p90_seconds": _round(self.p90),
            "max_seconds": _round(self.max),
            "mean_seconds": _round(self.mean),
            "buckets": self.buckets,
            "max_secret_age_seconds": self.max_secret_age,
            "over_max_secret_age": self.over_max_secret_age,
        }


@dataclass
class EnvStats:
    """One environment's figures. `env` None: failures the log could not place in an environment."""

    env: str | None
    rotations: int = 0
    retired: int = 0
    rotate_to_retire: list[float] = field(default_factory=list)  # seconds, per key retired in the window
    retiring: dict[str, float] = field(default_factory=dict)  # kid -> seconds since its rotate, not yet retired
    unseals: int = 0
    unseals_by_actor: Counter[str] = field(default_factory=Counter)
    unseals_by_host: Counter[str] = field(default_factory=Counter)
    failed_unseals: int = 0
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    ages: Ages | None = None  # None: not in a repository, or the environment is not in it

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "keys": {
                "rotations": self.rotations,
                "retired": self.retired,
                "rotate_to_retire": Spread.of(self.rotate_to_retire).to_dict(),
                "retiring": [{"kid": k, "seconds": _round(s)} for k, s in sorted(self.retiring.items())],
            },
            "unseals": {
                "total": self.unseals,
                "by_actor": dict(self.unseals_by_actor.most_common()),
                "by_host": dict(self.unseals_by_host.most_common()),
            },
            "failed_unseals": {"total": self.failed_unseals, "by_reason": dict(self.failures_by_reason.most_common())},
            "secret_ages": self.ages.to_dict() if self.ages is not None else None,
        }

    def text_lines(self) -> list[str]:
        lines = [f"{self.env or '(no environment)'}:"]
        timing = Spread.of(self.rotate_to_retire)
        keys = f"  keys: {self.rotations} rotation(s), {self.retired} retired"
        if timing.count:
            assert timing.mean is not None and timing.max is not None
            keys += f"; rotate to retire: mean {span(timing.mean)}, max {span(timing.max)} ({timing.count} key(s))"
        lines.append(keys)
        for kid, seconds in sorted(self.retiring.items()):
            lines.append(f"  still retiring: {kid}, rotated out {span(seconds)} ago")
        by_who = _by("actor", self.unseals_by_actor) + _by("host", self.unseals_by_host)
        lines.append(f"  unseals: {self.unseals}{by_who}")
        lines.append(f"  failed unseals: {self.failed_unseals}{_by('reason', self.failures_by_reason)}")
        a = self.ages
        if a is not None and a.values:
            assert a.min is not None and a.median is not None and a.p90 is not None and a.max is not None
            line = (
                f"  secret ages: {a.values} value(s): min {span(a.min)}, median {span(a.median)}, "
                f"p90 {span(a.p90)}, max {span(a.max)}"
            )
            if a.max_secret_age is not None:
                line += f"; {a.over_max_secret_age} over max_secret_age ({span(a.max_secret_age)})"
            lines.append(line)
            lines.append("    " + ", ".join(f"{label} {n}" for label, n in a.buckets.items()))
        elif a is not None:
            lines.append("  secret ages: no sealed values")
        return lines


@dataclass
class AuditStats:
    """`sealer audit stats`: the figures, and whether the log they come from verified."""

    log: str
    verification: Verification
    since: float | None  # Unix seconds; None: the whole log
    now: float
    entries: int  # in the window
    envs: list[EnvStats]
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        from .._show import iso

        return {
            "log": self.log,
            "verified": self.verified,
            "verification": self.verification.to_dict(),
            "since": iso(int(self.since)) if self.since is not None else None,
            "now": iso(int(self.now)),
            "entries": self.entries,
            "envs": [e.to_dict() for e in self.envs],
            "notes": self.notes,
        }

    def text_lines(self) -> list[str]:
        from .._show import iso

        v = self.verification
        if v.ok:
            anchored = f", anchored entry {v.anchor.entry} in place" if v.anchor is not None else ", no anchor"
            head = f"{self.log}: verified ({v.lines - len(v.torn)} entries{anchored})"
        else:
            head = f"{self.log}: NOT VERIFIED, the figures below may be forged: {v.error}"
        window = f"since {iso(int(self.since))}" if self.since is not None else "the whole log"
        lines = [head, f"{window}: {self.entries} entries"]
        for e in self.envs:
            lines += e.text_lines()
        return lines


def audit_stats(
    log: str | os.PathLike[str],
    *,
    config: Config | None = None,
    since: float | None = None,
    env: str | None = None,
    now: float | None = None,
) -> AuditStats:
    """Figures per environment from the audit log at `log` (verified first: `AuditStats.verified`)
    and, with `config`, the ages of the repository's sealed values. `since`: Unix seconds where
    the window starts (None: the whole log); `env`: only that environment."""
    now = time.time() if now is None else now
    checked, entries = read_log(log)
    by_env: dict[str | None, EnvStats] = {}

    def of(name: str | None) -> EnvStats:
        if name not in by_env:
            by_env[name] = EnvStats(name)
        return by_env[name]

    if config is not None:
        for name in config.environments:
            of(name)
    window = [e for e in entries if since is None or e.time >= since]
    _rotations(entries, since, now, of)
    for e in window:
        if e.unsealed:
            s = of(e.env)
            s.unseals += 1
            s.unseals_by_actor[e.actor] += 1
            s.unseals_by_host[e.host or UNKNOWN_HOST] += 1
        elif e.failed_unseal:
            s = of(e.env)
            s.failed_unseals += 1
            s.failures_by_reason[e.failure_reason] += 1
    notes = []
    if config is not None:
        _ages(config, by_env, now, env)
    else:
        notes.append("not in a sealer repository: secret ages are not reported (run it where .sealer.yaml is)")
    envs = [s for name, s in by_env.items() if env is None or name == env]
    envs.sort(key=lambda s: (s.env is None, s.env or ""))
    return AuditStats(os.fspath(log), checked, since, now, len(window), envs, notes)


def _rotations(entries: list[LogEntry], since: float | None, now: float, of: Callable[[str | None], EnvStats]) -> None:
    """Rotations and retirements in the window, and each retired key's time since the rotate that
    made it retiring (which may be before the window)."""
    retiring: dict[str | None, dict[str, float]] = {}
    for e in entries:
        if e.result != "ok" or e.event not in ("rotate", "retire"):
            continue
        inside = since is None or e.time >= since
        pending = retiring.setdefault(e.env, {})
        if e.event == "rotate":
            m = _NEW_KEY.search(e.reason or "")
            for kid in e.kids:
                if m is not None and kid != m.group(1):
                    pending.setdefault(kid, e.time)
            if inside:
                of(e.env).rotations += 1
        else:
            for kid in e.kids:
                rotated = pending.pop(kid, None)
                if inside and rotated is not None:
                    of(e.env).rotate_to_retire.append(e.time - rotated)
            if inside:
                of(e.env).retired += 1
    for name, pending in retiring.items():
        if pending:
            of(name).retiring.update({kid: now - t for kid, t in pending.items()})


def _ages(config: Config, by_env: dict[str | None, EnvStats], now: float, env: str | None) -> None:
    """Every value's age, from the repository's sealed files, through `sealer status`'s reading."""
    from .._status import status

    for name in [n for n in config.environments if env is None or n == env]:
        st = status(config, name, now=now)[0]
        policy = config.environments[name].policy
        by_env[name].ages = Ages.of([now - t for t in st.seal_times], policy.max_secret_age, len(st.old_values))


def _rank(s: list[float], p: float) -> float:
    return s[max(0, math.ceil(p * len(s)) - 1)]


def _round(x: float | None) -> float | None:
    return round(x, 3) if x is not None else None


def _by(what: str, counts: Counter[str]) -> str:
    if not counts:
        return ""
    return f"; by {what}: " + ", ".join(f"{k} {n}" for k, n in counts.most_common())


def span(seconds: float) -> str:
    """A duration for people: `3d 4h`, `12m 5s`, `4.2s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    out = []
    rest = int(seconds)
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
        if len(out) == 2:
            break
    return " ".join(out)
