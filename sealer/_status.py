"""`sealer status`: which file is sealed to which key, how old every secret and key is, which
values expire soon or have expired, and whether the environment's policy holds. Reads token headers
only: no private key needed, so CI can gate on it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import _format
from ._config import Config
from ._format.valuepath import format_path
from ._fsio import read_text
from ._locator import locate
from ._registry import iso
from ._repository import Repository, span, when

LIST_LIMIT = 10  # entries of one list the text output shows


@dataclass
class OldValue:
    file: str
    path: str
    sealed_at: int
    age_days: float


@dataclass
class ExpiringValue:
    file: str
    path: str
    expires_at: int  # Unix seconds, from the token's header
    days_left: float  # negative once expired
    seconds_left: int  # the same, exactly

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "expires": when(self.expires_at)}


@dataclass
class EnvStatus:
    env: str
    keys: list[dict[str, Any]]
    values_per_kid: dict[str, int]
    values: int = 0
    files: int = 0
    old_values: list[OldValue] = field(default_factory=list)
    revoked_values: list[OldValue] = field(default_factory=list)
    future_values: list[OldValue] = field(default_factory=list)  # sealed ahead of this clock: refused
    expiring_values: list[ExpiringValue] = field(default_factory=list)  # within warn_before: a warning
    expired_values: list[ExpiringValue] = field(default_factory=list)  # past their expiry: a breach
    overdue_keys: list[str] = field(default_factory=list)
    files_on_retiring: dict[str, list[str]] = field(default_factory=dict)  # kid -> files
    unknown_kids: list[str] = field(default_factory=list)
    seal_times: list[int] = field(default_factory=list, repr=False)  # of every value, for `sealer audit stats`

    @property
    def breaches(self) -> list[str]:
        out = []
        if self.old_values:
            out.append(f"{len(self.old_values)} value(s) older than max_secret_age")
        if self.revoked_values:
            out.append(f"{len(self.revoked_values)} value(s) sealed before not_before (revoked)")
        if self.future_values:
            out.append(f"{len(self.future_values)} value(s) with a seal time in the future (refused at deploy)")
        if self.expired_values:
            out.append(f"{len(self.expired_values)} value(s) past their expiry (set new values)")
        if self.overdue_keys:
            out.append(f"key(s) past key_rotation_period: {', '.join(self.overdue_keys)}")
        if self.unknown_kids:
            out.append(f"value(s) sealed to keys not in the registry: {', '.join(self.unknown_kids)}")
        return out

    def text_lines(self, limit: int = LIST_LIMIT) -> list[str]:
        """`sealer status` as text: lists longer than `limit` are cut, and say by how much."""
        lines = [f"{self.env}: {self.values} value(s) in {self.files} file(s)"]
        for k in self.keys:
            held = self.values_per_kid.get(k["kid"], 0)
            role = " recovery" if k["role"] == "recovery" else ""
            lines.append(f"  key {k['kid']}  {k['state']:<8}{role}  {k['age_days']:>7.1f} days  {held} value(s)")
        for kid, files in self.files_on_retiring.items():
            more = f" and {len(files) - 1} more" if len(files) > 1 else ""
            lines.append(f"  still on retiring key {kid}: {len(files)} file(s), e.g. {files[0]}{more}")
        for label, values in (
            ("too old", self.old_values),
            ("revoked", self.revoked_values),
            ("sealed in the future", self.future_values),
        ):
            for v in values[:limit]:
                age = f" ({v.age_days:.0f} days)" if label == "too old" else ""
                lines.append(f"  {label}: {v.file} {v.path}{age}")
            if len(values) > limit:
                lines.append(f"  {label}: and {len(values) - limit} more (sealer status --output json lists all)")
        for label, expiring in (("expired", self.expired_values), ("expiring", self.expiring_values)):
            for e in expiring[:limit]:
                left = e.seconds_left
                rel = f"in {span(left)}" if left > 0 else f"{span(left)} ago"
                lines.append(f"  {label}: {e.file} {e.path} (at {when(e.expires_at)}, {rel})")
            if len(expiring) > limit:
                lines.append(f"  {label}: and {len(expiring) - limit} more (sealer status --output json lists all)")
        lines += [f"  POLICY BREACH: {b}" for b in self.breaches]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "keys": self.keys,
            "files": self.files,
            "values": self.values,
            "values_per_kid": self.values_per_kid,
            "old_values": [v.__dict__ for v in self.old_values],
            "revoked_values": [v.__dict__ for v in self.revoked_values],
            "future_values": [v.__dict__ for v in self.future_values],
            "expiring_values": [v.to_dict() for v in self.expiring_values],
            "expired_values": [v.to_dict() for v in self.expired_values],
            "overdue_keys": self.overdue_keys,
            "files_on_retiring_keys": self.files_on_retiring,
            "unknown_kids": self.unknown_kids,
            "breaches": self.breaches,
        }


def status(cfg: Config, env: str | None = None, *, now: float | None = None) -> list[EnvStatus]:
    now = time.time() if now is None else now
    repo = Repository(cfg)
    out = []
    for name in [env] if env else list(cfg.environments):
        rules = repo.rules(name)
        reg = rules.registry
        keys = []
        for k in reg.keys:
            age = (now - k.created.timestamp()) / 86400
            keys.append(
                {
                    "kid": k.kid,
                    "state": k.state,
                    "role": k.role,
                    "created": iso(k.created),
                    "age_days": round(age, 1),
                    "kind": k.kind,
                }
            )
        st = EnvStatus(name, keys, {})
        st.overdue_keys = [k.kid for k in rules.overdue_keys(now)]
        per_kid: Counter[str] = Counter()
        retiring = {k.kid for k in reg.keys if k.state == "retiring"}
        unknown: set[str] = set()
        for f in repo.files([name]):
            path = repo.path(f)
            text = read_text(path)
            if not _format.mentions_tokens(text):
                continue
            rel = f.rel
            st.files += 1
            for loc in locate(text, rel):
                tok = _format.parse_token(loc.text)
                st.values += 1
                per_kid.update(tok.kids)
                unknown.update(k for k in tok.kids if reg.find(k) is None)
                for kid in set(tok.kids) & retiring:
                    files = st.files_on_retiring.setdefault(kid, [])
                    if rel not in files:
                        files.append(rel)
                st.seal_times.append(tok.sealed_at)
                age = now - tok.sealed_at
                old = OldValue(rel, format_path(loc.ctx.path), tok.sealed_at, round(age / 86400, 1))
                if rules.too_old(tok, now):
                    st.old_values.append(old)
                if rules.revoked(tok):
                    st.revoked_values.append(old)
                elif rules.from_future(tok, now):
                    st.future_values.append(old)
                if tok.expires_at is not None and (rules.expired(tok, now) or rules.expiring(tok, now)):
                    left = tok.expires_at - now
                    late = ExpiringValue(rel, old.path, tok.expires_at, round(left / 86400, 1), int(left))
                    (st.expired_values if rules.expired(tok, now) else st.expiring_values).append(late)
        st.values_per_kid = dict(per_kid)
        st.unknown_kids = sorted(unknown)
        out.append(st)
    return out
