"""The repository: which files belong to which environment, and what each environment accepts.

Two rules live here and nowhere else, and every door (seal, set, unseal, exec, check, status,
reseal, retire, the controller) asks them:

- **Which files.** `select` decides, over any listing of a tree (a directory on disk or a git
  commit's blobs), which paths are an environment's files: every `.yaml`/`.yml` file its path
  rules match, hidden ones included (a `.env.yaml` holds secrets like any other). A symbolic
  link, a submodule or a file over the size cap there is refused, not skipped: fail closed.
- **What an environment accepts.** `EnvRules` holds one environment's registry and policy and
  answers: may this token be opened (active or retiring key, sealed after `not_before`), does
  this file's signature hold, which values break the policy, when a new value expires and what
  opening an expired one does (`on_expiry`).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._config import CONFIG_NAME, Config, Environment
from ._format import Token, format_path
from ._format.valuepath import Path as ValuePath
from ._fsio import MAX_FILE_BYTES
from .errors import (
    ConfigError,
    EnvironmentMismatch,
    Expired,
    IdentityError,
    Refused,
    UnsafePath,
    UnsealError,
    UsageError,
)

if TYPE_CHECKING:
    from ._document import SealedFile
    from ._keys import Identity, Recipient
    from ._registry import KeyRecord, Registry
    from ._signing import SignatureError, SignaturePolicy

YAML_SUFFIXES = (".yaml", ".yml")
CLOCK_SKEW = 300  # seconds a value's seal time may lie ahead of this clock (another machine's clock)


def is_yaml(name: str) -> bool:
    """A YAML file by its name, in any case (`db.YAML` is applied by kubectl like `db.yaml`)."""
    return name.lower().endswith(YAML_SUFFIXES)


# --- which files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One path of a tree listing, as the file rule needs it."""

    rel: str  # repository-relative, POSIX
    kind: str  # "file", "link" (a symbolic link) or "other" (a submodule, a device, ...)
    size: int | None = None


@dataclass(frozen=True)
class EnvFile:
    env: str
    rel: str
    entry: Entry


def list_tree(root: Path, top: Path | None = None) -> Iterator[Entry]:
    """Every path below `top` (default: the root) as an Entry; never into `.git`, never through a link."""
    start = root if top is None else top
    try:
        st = start.lstat()
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        yield _entry(root, start, st)
        return
    for dirpath, dirnames, filenames in os.walk(start):
        keep = []
        for d in sorted(dirnames):
            if d == ".git":
                continue
            p = Path(dirpath, d)
            if p.is_symlink():
                yield _entry(root, p, p.lstat())
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = Path(dirpath, name)
            yield _entry(root, p, p.lstat())


def _entry(root: Path, p: Path, st: os.stat_result) -> Entry:
    kind = "link" if stat.S_ISLNK(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
    return Entry(p.relative_to(root).as_posix(), kind, st.st_size if kind == "file" else None)


def select(
    cfg: Config, entries: Iterable[Entry], envs: Iterable[str] | None = None, *, max_bytes: int = MAX_FILE_BYTES
) -> list[EnvFile]:
    """The environments' files among `entries`, in path order. The one file rule of sealer."""
    wanted = set(cfg.environments if envs is None else envs)
    prefixes = [_literal_prefix(p) for e in wanted for p in cfg.environments[e].paths]
    out: list[EnvFile] = []
    for entry in entries:
        if entry.rel.rsplit("/", 1)[-1] == CONFIG_NAME and entry.rel != CONFIG_NAME:
            raise ConfigError(
                f"a second {CONFIG_NAME} inside the repository",
                file=entry.rel,
                hint="a repository has one configuration, at its root: remove the nested one",
            )
        owner = cfg.env_for(entry.rel)
        mine = owner is not None and owner.name in wanted
        if entry.kind != "file":
            # A link to a directory above an environment's paths would bring files in unseen.
            if mine or any(pre == entry.rel or pre.startswith(entry.rel + "/") for pre in prefixes):
                what = "a symbolic link" if entry.kind == "link" else "not a regular file (a submodule?)"
                raise UnsafePath(
                    f"is {what} under an environment's paths; sealer does not follow it",
                    file=entry.rel,
                    hint="commit the sealed file itself there",
                )
            continue
        if not mine or not is_yaml(entry.rel):
            continue
        if entry.size is None or entry.size > max_bytes:
            raise UnsafePath(
                f"is {entry.size} bytes, over the {max_bytes} byte limit for a sealed file", file=entry.rel
            )
        assert owner is not None
        out.append(EnvFile(owner.name, entry.rel, entry))
    out.sort(key=lambda f: f.rel)
    return out


def _literal_prefix(glob: str) -> str:
    """The directory part of a glob before its first wildcard: where its files can be."""
    parts = []
    for seg in glob.split("/")[:-1]:
        if any(c in seg for c in "*?["):
            break
        parts.append(seg)
    return "/".join(parts)


# --- what an environment accepts -------------------------------------------------------------------


@dataclass(frozen=True)
class EnvRules:
    """One environment's rules, read once per run from `.sealer.yaml` and `keys/ENV.yaml`.

    Plain data (it pickles to worker processes). Every door that opens, seals or checks a value of
    this environment asks it, so no door can be more lenient than another."""

    name: str
    environment: Environment
    registry: Registry
    signatures: SignaturePolicy
    opening: frozenset[str] = field(default_factory=frozenset)  # kids whose values may be opened

    @classmethod
    def of(cls, environment: Environment, registry: Registry) -> EnvRules:
        from ._signing import SignaturePolicy

        opening = frozenset(k.kid for k in registry.keys if registry.opens(k.kid))
        return cls(environment.name, environment, registry, SignaturePolicy.of(registry, environment.policy), opening)

    @property
    def current_kids(self) -> tuple[str, ...]:
        return self.registry.current_kids()

    def recipients(self) -> list[Recipient]:
        return self.registry.recipients()

    @property
    def not_before(self) -> int | None:
        return self.registry.not_before_ts()

    # The opening side.

    def accept(self, tok: Token, path: ValuePath, source: str, now: float | None = None) -> tuple[str, ...]:
        """The kids of `tok` that may open it here; raises when none may, the value is revoked, or
        its seal time is in the future (it would escape `not_before` and `max_secret_age`)."""
        nb = self.not_before
        if nb is not None and tok.sealed_at < nb:
            raise UnsealError(
                f"sealed before {self.name}'s not_before and is revoked",
                file=source,
                path=format_path(path),
                hint=f"set a fresh value: sealer set {source} '{format_path(path)}'",
            )
        if self.from_future(tok, time.time() if now is None else now):
            raise UnsealError(
                f"{future_message(tok)}; refused, as it would escape not_before and max_secret_age",
                file=source,
                path=format_path(path),
                hint=f"set it again from a machine with a correct clock: sealer set {source} '{format_path(path)}'",
            )
        usable = tuple(k for k in tok.kids if k in self.opening)
        if not usable:
            states = " and ".join(f"{k} ({self._state(k)})" for k in tok.kids)
            raise UnsealError(
                f"is sealed only to retired or unknown key {states}; {self.name} no longer opens it",
                file=source,
                path=format_path(path),
                hint="a custodian re-seals it to the current keys (sealer reseal) or sets it again",
            )
        return usable

    def _state(self, kid: str) -> str:
        record = self.registry.find(kid)
        return f"{record.state} in {self.name}" if record is not None else f"not one of {self.name}'s keys"

    def lookup(
        self, tok: Token, path: ValuePath, source: str, identity_for: Callable[[str], Identity | None]
    ) -> Callable[[str], Identity | None]:
        """`identity_for`, limited to the kids `accept` lets open `tok`. When the caller holds no
        key for those but does hold one for a kid refused here (a retired key, another
        environment's key), that is said, naming the key and its state, rather than "no identity"."""
        usable = self.accept(tok, path, source)
        if not any(identity_for(k) is not None for k in usable):
            held = [k for k in tok.kids if k not in usable and identity_for(k) is not None]
            if held:
                raise IdentityError(
                    f"the identity given is for key {held[0]}, which is {self._state(held[0])} and may not"
                    f" open it; this value opens only with key {' or '.join(usable)}",
                    file=source,
                    path=format_path(path),
                    hint=f"pass --identity with the private key of {' or '.join(usable)}; sealer keys list shows them",
                )
        return lambda kid: identity_for(kid) if kid in usable else None

    def admit(self, sf: SealedFile, path: str | None = None) -> None:
        """Before any value is opened: the file is this environment's and its signatures hold.
        `path`: the file's repository-relative path, which signatures cover (default: its name)."""
        file_env = sf.env
        if file_env is not None and file_env != self.name:
            raise EnvironmentMismatch(
                f"is sealed for environment {file_env!r}, but belongs to {self.name!r}", file=sf.source
            )
        self.signatures.check(sf, path=path)

    def signature_problems(self, sf: SealedFile, path: str | None = None) -> list[SignatureError]:
        return self.signatures.problems(sf, path=path)

    # The checking side (no private key).

    def revoked(self, tok: Token) -> bool:
        """Sealed before the environment's `not_before`: refused everywhere, reported by check and status."""
        nb = self.not_before
        return nb is not None and tok.sealed_at < nb

    def from_future(self, tok: Token, now: float) -> bool:
        """Sealed later than `now` plus the allowed clock skew (`CLOCK_SKEW`): refused everywhere
        (`accept`), reported by check and status. A future seal time would make a value look fresh
        to `max_secret_age` and sealed after any `not_before` a custodian sets after a leak."""
        return tok.sealed_at > now + CLOCK_SKEW

    def too_old(self, tok: Token, now: float) -> bool:
        """Older than the policy's `max_secret_age`: a secret due for a fresh value."""
        limit = self.environment.policy.max_secret_age
        return limit is not None and now - tok.sealed_at > limit

    def overdue_keys(self, now: float) -> list[KeyRecord]:
        """Current environment keys older than the policy's `key_rotation_period`."""
        period = self.environment.policy.key_rotation_period
        if period is None:
            return []
        return [k for k in self.registry.current() if k.role == "environment" and now - k.created.timestamp() > period]

    # Expiry: bound in the token's header (docs/format.md § 5), so it is read without a key and
    # cannot be edited; what it means here is this environment's policy.

    def expiry_for(self, requested: str | None, sealed_at: int, *, source: str | None = None) -> int | None:
        """The expiry of a value sealed now, at `sealed_at`: `requested` (`--expires`, a duration
        after the seal time or an RFC 3339 time), else `max_lifetime` after the seal time, else
        none. Refused: an expiry not after the seal time, or further away than `max_lifetime`."""
        from ._config import parse_expires
        from ._format.token import MAX_TIME

        limit = self.environment.policy.max_lifetime
        if requested is None:
            return None if limit is None else sealed_at + limit
        try:
            at = parse_expires(requested, sealed_at)
        except ValueError as e:
            raise UsageError(f"--expires: {e}", file=source) from None
        if at <= sealed_at:
            raise UsageError(
                f"--expires {requested}: {when(at)} is not after the seal time, {when(sealed_at)}",
                file=source,
                hint="give a later time, or a duration such as 30d",
            )
        if limit is not None and at - sealed_at > limit:
            raise Refused(
                f"--expires {requested} is further away than {self.name}'s max_lifetime ({span(limit)})",
                file=source,
                hint=f"give an expiry within {span(limit)}, or leave --expires out to get exactly that",
            )
        if at > MAX_TIME:
            raise UsageError(f"--expires {requested}: too far in the future", file=source)
        return at

    def expired(self, tok: Token, now: float) -> bool:
        """Past its expiry: refused when opened (`opened`), unless `on_expiry: warn`."""
        return tok.expires_at is not None and now >= tok.expires_at

    def expiring(self, tok: Token, now: float) -> bool:
        """Not expired, but expiring within the policy's `warn_before`: check and status warn."""
        return tok.expires_at is not None and now < tok.expires_at <= now + self.environment.policy.warn_before

    def opened(self, tok: Token, path: ValuePath, source: str, now: float | None = None) -> str | None:
        """After a value opened (so its expiry is authentic): raises `Expired` when it has expired,
        or under `on_expiry: warn` returns a one-line warning instead; None when it has not."""
        t = time.time() if now is None else now
        if not self.expired(tok, t):
            return None
        return expiry_refusal(tok, path, source, warn=self.environment.policy.on_expiry == "warn", env=self.name)

    def value_problems(self, tok: Token, now: float) -> list[tuple[str, str]]:
        """(code, message) for each way a sealed value breaks this environment's policy."""
        reg, policy = self.registry, self.environment.policy
        current = self.current_kids
        out = []
        extra = [k for k in tok.kids if k not in current]
        missing = [k for k in current if k not in tok.kids]
        if extra:
            records = {k: reg.find(k) for k in extra}
            states = ", ".join(f"{k} ({r.state if r else 'not in the registry'})" for k, r in records.items())
            out.append(
                (
                    "stale-key",
                    f"sealed to {states}, not only to the current keys (run: sealer reseal --env {self.name})",
                )
            )
        elif missing:
            out.append(
                (
                    "missing-key",
                    f"not sealed to current key {', '.join(missing)} (run: sealer reseal --env {self.name})",
                )
            )
        if self.revoked(tok):
            out.append(("revoked", f"sealed before {self.name}'s not_before: revoked, set a fresh value"))
        elif self.from_future(tok, now):
            out.append(("future", f"{future_message(tok)}: refused at deploy, set it again with a correct clock"))
        elif policy.max_secret_age is not None and self.too_old(tok, now):
            days = (now - tok.sealed_at) / 86400
            limit = policy.max_secret_age / 86400
            out.append(
                (
                    "too-old",
                    f"sealed {days:.0f} days ago, older than max_secret_age ({limit:g} days): set a fresh value",
                )
            )
        if self.expired(tok, now) and policy.on_expiry == "refuse":
            out.append(("expired", f"{expiry_note(tok, now)}: refused at deploy, set a new value with a new expiry"))
        lifetime = policy.max_lifetime
        if lifetime is not None and (tok.expires_at is None or tok.expires_at - tok.sealed_at > lifetime):
            # The sealing client applies max_lifetime; a file sealed without it (an older sealer, a
            # .sealer.yaml edited locally, a value from before the policy) is caught here, the gate.
            lives = "has no expiry" if tok.expires_at is None else f"lives {span(tok.expires_at - tok.sealed_at)}"
            out.append(
                (
                    "lifetime",
                    f"{lives}, longer than {self.name}'s max_lifetime ({span(lifetime)}): set it again"
                    f" (sealer set … --expires {span(lifetime)} or less)",
                )
            )
        return out

    def value_warnings(self, tok: Token, now: float) -> list[tuple[str, str]]:
        """(code, message) for what the policy warns of, without refusing: a value expiring within
        `warn_before`, or one expired under `on_expiry: warn`."""
        if self.expiring(tok, now):
            return [("expiring", f"{expiry_note(tok, now)}: set a new value before then")]
        if self.expired(tok, now) and self.environment.policy.on_expiry == "warn":
            return [("expired", f"{expiry_note(tok, now)}: deployed with a warning (on_expiry: warn)")]
        return []


def future_message(tok: Token) -> str:
    return f"sealed at {when(tok.sealed_at)}, in the future (more than {CLOCK_SKEW // 60} minutes ahead of this clock)"


def when(ts: int) -> str:
    """Unix seconds as RFC 3339 UTC, the form every message and `--output json` uses."""
    return dt.datetime.fromtimestamp(min(ts, 253402300799), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: float) -> str:
    """A duration for people: `14d`, `5h`, `90s` (the largest unit that fits, rounded down)."""
    s = int(abs(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def expiry_note(tok: Token, now: float) -> str:
    """`expires at TIME, in 3d` or `expired at TIME, 2h ago`: what check and status say of a value."""
    assert tok.expires_at is not None
    ahead = tok.expires_at - now
    if ahead > 0:
        return f"expires at {when(tok.expires_at)}, in {span(ahead)}"
    return f"expired at {when(tok.expires_at)}, {span(ahead)} ago"


def expiry_unchecked(tok: Token, path: ValuePath, source: str, now: float | None = None) -> str | None:
    """`EnvRules.opened` without an environment (`UNCHECKED`, `--no-rules`): no policy says to
    refuse, so an expired value opens, always with the warning."""
    t = time.time() if now is None else now
    if tok.expires_at is None or t < tok.expires_at:
        return None
    return expiry_refusal(tok, path, source, warn=True, env=None)


def expiry_refusal(tok: Token, path: ValuePath, source: str, *, warn: bool, env: str | None) -> str:
    """An expired value, said once for every door: raised as `Expired`, or (`warn`) the warning."""
    assert tok.expires_at is not None
    where = format_path(path)
    if warn:
        policy = f"{env}'s on_expiry: warn" if env else "no environment rules apply"
        return f"{source}: {where}: warning: expired at {when(tok.expires_at)}; opened anyway ({policy})"
    raise Expired(
        f"expired at {when(tok.expires_at)}; refused",
        file=source,
        path=where,
        hint=f"set a new value with a new expiry: sealer set {source} '{where}' --expires DURATION|TIME",
    )


# --- the repository --------------------------------------------------------------------------------


class Repository:
    """A sealer repository: its configuration, its environments' rules and its files.

    Opened from a directory (`Repository.open`) or from a configuration already read elsewhere,
    such as a git commit's blobs (`Repository(config)`, the controller)."""

    def __init__(self, config: Config, registries: dict[str, Registry] | None = None) -> None:
        self.config = config
        self._registries: dict[str, Registry] = dict(registries or {})
        self._rules: dict[str, EnvRules] = {}

    @classmethod
    def open(cls, start: str | os.PathLike[str] | None = None) -> Repository:
        """The repository holding `start` (default: the current directory)."""
        from ._config import load_config

        return cls(load_config(Path(start) if start is not None else None))

    @property
    def root(self) -> Path:
        return self.config.root

    def registry(self, env: str) -> Registry:
        if env not in self._registries:
            self._registries[env] = self.config.registry(env)
        return self._registries[env]

    def rules(self, env: str) -> EnvRules:
        if env not in self.config.environments:
            raise UsageError(
                f"unknown environment {env!r}",
                hint=f"known: {', '.join(self.config.environments) or 'none'}; add one in {CONFIG_NAME}",
            )
        if env not in self._rules:
            self._rules[env] = EnvRules.of(self.config.environments[env], self.registry(env))
        return self._rules[env]

    def env_of(self, path: Path, requested: str | None = None) -> tuple[str, str | None]:
        """(environment, repository-relative path or None) of a file, by its path rule and `--env`."""
        rel = self.config.relpath(path, env=requested)
        return self.config.resolve_env(rel, requested), rel

    def owner_of(self, rel: str) -> str | None:
        owner = self.config.env_for(rel)
        return owner.name if owner is not None else None

    def select(
        self, entries: Iterable[Entry], envs: Iterable[str] | None = None, *, max_bytes: int = MAX_FILE_BYTES
    ) -> list[EnvFile]:
        """The environments' files among a listing of this repository's tree (`select`)."""
        return select(self.config, entries, envs, max_bytes=max_bytes)

    def files(self, envs: Iterable[str] | None = None, under: Sequence[Path] = ()) -> list[EnvFile]:
        """Every file of the environments (default: all), optionally only below `under`."""
        tops = [self.root] if not under else [self._inside(u) for u in under]
        seen: dict[str, EnvFile] = {}
        for top in tops:
            for f in self.select(list_tree(self.root, top), envs):
                seen.setdefault(f.rel, f)
        return sorted(seen.values(), key=lambda f: f.rel)

    def path(self, f: EnvFile) -> Path:
        return self.root / f.rel

    def _inside(self, p: Path) -> Path:
        rel = self.config.relpath(p)
        assert rel is not None
        return self.root / rel if rel != "." else self.root

    def shared_keys(self, env: str) -> list[tuple[str, str]]:
        """(kid, other environment) for each of `env`'s keys that another environment also lists.

        Values of one would be readable by the other's key holders. A recovery key shared by
        several environments is fine: that is what break-glass keys are."""
        mine = self.registry(env)
        out = []
        for other, theirs in self.registries().items():
            if other == env:
                continue
            for k in mine.keys:
                t = theirs.find(k.kid)
                if t is not None and not (k.role == "recovery" and t.role == "recovery"):
                    out.append((k.kid, other))
        return out

    def registries(self) -> dict[str, Registry]:
        """Every environment's registry that loads; a broken one is the caller's to report."""
        out = {}
        for name in self.config.environments:
            try:
                out[name] = self.registry(name)
            except ConfigError:
                continue
        return out
