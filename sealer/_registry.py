"""The public-key registry, `keys/ENV.yaml`: every key an environment ever had, with its state.

It is committed and reviewed like code; sealing reads it to learn the current recipients, so
a developer needs nothing else to seal. Private keys never come near it.

Lifecycle: a key is `active` (new values are sealed to it), then `retiring` after a rotation (still
opens values, no new ones), then `retired` (opens nothing at deploy time). Recovery (break-glass)
recipients are sealed to alongside the active keys. `not_before` revokes every value sealed earlier.

Key kinds: an environment's current keys are all post-quantum or all classic (`check_kinds`), since
a token opens with any one of its keys: a classic key beside a post-quantum one voids the post-quantum
protection. `allow_mixed_kinds: true` in the file records a custodian's explicit opt-in.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._config import KEYS_DIR, load_yaml_mapping
from ._fsio import atomic_write, locked, refuse_inside
from ._keys import Recipient, kid_of, parse_recipient
from .errors import ConfigError, KeyFormatError, Refused, UsageError

STATES = ("active", "retiring", "retired")
ROLES = ("environment", "recovery")


@dataclass
class KeyRecord:
    kid: str
    recipient: str
    created: dt.datetime
    state: str
    role: str = "environment"
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kid": self.kid,
            "recipient": self.recipient,
            "created": iso(self.created),
            "state": self.state,
        }
        if self.role != "environment":
            out["role"] = self.role
        if self.label:
            out["label"] = self.label
        return out

    @property
    def kind(self) -> str:
        return parse_recipient(self.recipient).kind

    @property
    def post_quantum(self) -> bool:
        return parse_recipient(self.recipient).post_quantum

    def describe(self) -> str:
        """`recovery key 1a2b… (x25519)`: for messages."""
        return f"{'recovery key' if self.role == 'recovery' else 'key'} {self.kid} ({self.kind})"


@dataclass
class SignerRecord:
    """An allowed signer of the environment: a name for people, an Ed25519 public key (sealer._signing)."""

    name: str
    key: str  # sealer-signer1…
    kid: str
    created: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kid": self.kid, "key": self.key, "created": iso(self.created)}


@dataclass
class Registry:
    """keys/ENV.yaml of one environment."""

    path: Path
    env: str
    keys: list[KeyRecord]
    not_before: dt.datetime | None = None
    _recipients: list[Recipient] | None = field(default=None, repr=False, compare=False)
    signers: list[SignerRecord] = field(default_factory=list)
    allow_mixed_kinds: bool = False  # a custodian's opt-in to post-quantum and classic keys together

    def __getstate__(self) -> dict[str, Any]:
        """Plain data for worker processes: parsed recipients (key objects) are rebuilt there."""
        state = dict(self.__dict__)
        state["_recipients"] = None
        return state

    @classmethod
    def load(cls, root: Path, env: str, *, text: str | None = None) -> Registry:
        """`keys/ENV.yaml` under `root`, or its `text` as read elsewhere (a git commit's blob)."""
        path = root / KEYS_DIR / f"{env}.yaml"
        if text is None and not path.exists():
            return cls(path, env, [])
        data = load_yaml_mapping(path, text=text)
        raw = data.get("keys") or []
        if not isinstance(raw, list):
            raise ConfigError("'keys' must be a list", file=str(path), hint="restore the file from git")
        keys = [_record(k, f"keys[{i}]", path) for i, k in enumerate(raw)]
        if len({k.kid for k in keys}) != len(keys):
            raise ConfigError("a key is listed twice", file=str(path), hint="restore the file from git")
        nb = data.get("not_before")
        raw_signers = data.get("signers") or []
        if not isinstance(raw_signers, list):
            raise ConfigError("'signers' must be a list", file=str(path), hint="restore the file from git")
        signers = [_signer(k, f"signers[{i}]", path) for i, k in enumerate(raw_signers)]
        if len({s.kid for s in signers}) != len(signers):
            raise ConfigError("a signer key is listed twice", file=str(path), hint="restore the file from git")
        mixed = data.get("allow_mixed_kinds", False)
        if not isinstance(mixed, bool):
            raise ConfigError("'allow_mixed_kinds' must be true or false", file=str(path))
        return cls(
            path,
            env,
            keys,
            _time(nb, "not_before", path) if nb is not None else None,
            signers=signers,
            allow_mixed_kinds=mixed,
        )

    def current(self) -> list[KeyRecord]:
        """The keys new values are sealed to: active environment keys, then active recovery keys."""
        active = [k for k in self.keys if k.state == "active"]
        return [k for k in active if k.role == "environment"] + [k for k in active if k.role == "recovery"]

    def recipients(self) -> list[Recipient]:
        """What new values are sealed to. Refuses an environment that mixes key kinds (`check_kinds`)."""
        if self._recipients is None:
            self.check_kinds()
            self._recipients = [parse_recipient(k.recipient) for k in self.current()]
        return self._recipients

    def kinds(self) -> tuple[list[KeyRecord], list[KeyRecord]]:
        """The current keys split into (post-quantum, classic)."""
        current = self.current()
        return [k for k in current if k.post_quantum], [k for k in current if not k.post_quantum]

    def check_kinds(self, *, change: str | None = None, new: KeyRecord | None = None, allow: bool = False) -> None:
        """The one rule on key kinds, checked when sealing (`recipients`) and when a key is added,
        generated or rotated (`change` then says what is being done, `new` is the key it adds).

        An environment's current keys (active environment keys and active recovery keys: what new
        values are sealed to) must be all post-quantum or all classic. A token opens with any one
        of its keys, so a classic key beside a post-quantum one lets a quantum adversary open every
        value and the post-quantum protection is void; age refuses to mix them for the same reason.
        Retiring keys get no new values, so a rotation from a classic key to a post-quantum one is
        not a mix. Allowed only with the custodian's opt-in (`allow`, or `allow_mixed_kinds: true`
        recorded in the registry)."""
        pq, classic = self.kinds()
        if not pq or not classic or allow or self.allow_mixed_kinds:
            return
        env = self.env
        mix = f"post-quantum {_listing(pq)} and classic {_listing(classic)} together"
        why = "a classic key alone opens every value, so the post-quantum protection is void"
        old = [k for k in classic if k is not new]
        pq_env = any(k.role == "environment" for k in pq)
        steps = []
        if pq_env and new is not None and new in classic and new.role == "environment":
            steps.append("make the new key post-quantum too (--kind mlkem768x25519)")
        if pq_env and any(k.role == "environment" for k in old):
            steps.append(f"rotate instead of adding keys (sealer keys rotate {env} --kind mlkem768x25519)")
        if pq_env and any(k.role == "recovery" for k in old):
            retire = ", ".join(f"sealer keys retire {env} {k.kid} --force" for k in old if k.role == "recovery")
            steps.append(f"retire the classic recovery keys first ({retire})")
        if pq_env and any(k.role == "recovery" for k in classic):
            steps.append(
                f"use a post-quantum recovery key (sealer keys generate {env} --recovery --kind mlkem768x25519,"
                " or one from age-keygen -pq)"
            )
        if not pq_env:
            steps.append(
                f"use classic recovery keys (age1…, ssh-ed25519) until {env} itself is post-quantum"
                f" (sealer keys rotate {env} --kind mlkem768x25519)"
            )
        fix = "; ".join(steps)
        if change is not None:
            raise ConfigError(
                f"refusing to {change}: {env} would seal to {mix}, and {why}",
                hint=f"{fix}; or pass --allow-mixed-kinds to accept the mix",
            )
        raise ConfigError(
            f"refusing to seal for {env}: its keys are {mix}, and {why}",
            file=str(self.path),
            hint=f"a custodian must {fix}; or record the mix as intended: allow_mixed_kinds: true",
        )

    def current_kids(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self.current())

    def find(self, kid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def opens(self, kid: str) -> bool:
        """May a value sealed to `kid` be opened at deploy time? Never with a retired or unknown key."""
        k = self.find(kid)
        return k is not None and k.state != "retired"

    def not_before_ts(self) -> int | None:
        return int(self.not_before.timestamp()) if self.not_before else None

    def find_signer(self, kid: str) -> SignerRecord | None:
        return next((s for s in self.signers if s.kid == kid), None)

    def require(self, kid: str) -> KeyRecord:
        k = self.find(kid)
        if k is None:
            raise UsageError(f"environment {self.env!r} has no key {kid}", hint="see: sealer keys list")
        return k

    def save(self) -> None:
        from ruamel.yaml import YAML

        buf = io.StringIO()
        buf.write(f"# Public keys of environment {self.env}. Managed by `sealer keys`; safe to commit.\n")
        data: dict[str, Any] = {"env": self.env}
        if self.not_before is not None:
            data["not_before"] = iso(self.not_before)
        data["keys"] = [k.to_dict() for k in self.keys]
        if self.signers:
            data["signers"] = [s.to_dict() for s in self.signers]
        if self.allow_mixed_kinds and all(self.kinds()):
            # The opt-in lapses once the environment no longer mixes kinds: a later mix needs a new one.
            data["allow_mixed_kinds"] = True
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.dump(data, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, buf.getvalue().encode())
        self._recipients = None


def _listing(keys: list[KeyRecord]) -> str:
    return ", ".join(f"{'recovery key' if k.role == 'recovery' else 'key'} {k.kid}" for k in keys)


def _record(k: Any, where: str, path: Path) -> KeyRecord:
    if not isinstance(k, dict) or not isinstance(k.get("recipient"), str):
        raise ConfigError(f"{where} needs a 'recipient'", file=str(path), hint="restore the file from git")
    try:
        rec = parse_recipient(k["recipient"]).encode()
    except KeyFormatError as e:
        raise ConfigError(f"{where}: {e}", file=str(path), hint="restore the file from git") from None
    kid = kid_of(rec)
    if k.get("kid") != kid:
        raise ConfigError(
            f"{where}: kid {k.get('kid')!r} does not match its recipient (expected {kid})",
            file=str(path),
            hint="restore the file from git",
        )
    state = k.get("state", "active")
    if state not in STATES:
        raise ConfigError(f"{where}: state must be one of {', '.join(STATES)}", file=str(path))
    role = k.get("role", "environment")
    if role not in ROLES:
        raise ConfigError(f"{where}: role must be one of {', '.join(ROLES)}", file=str(path))
    return KeyRecord(kid, rec, _time(k.get("created"), f"{where}.created", path), state, role, str(k.get("label", "")))


def _signer(k: Any, where: str, path: Path) -> SignerRecord:
    from ._document import SIGNER_NAME
    from ._signing import parse_signer_public
    from .errors import KeyFormatError

    if not isinstance(k, dict) or not isinstance(k.get("key"), str) or not isinstance(k.get("name"), str):
        raise ConfigError(f"{where} needs a 'name' and a 'key'", file=str(path), hint="restore the file from git")
    if not SIGNER_NAME.fullmatch(k["name"]):
        raise ConfigError(f"{where}: bad signer name {k['name']!r}", file=str(path))
    try:
        public = parse_signer_public(k["key"])
    except KeyFormatError as e:
        raise ConfigError(f"{where}: {e}", file=str(path), hint="restore the file from git") from None
    if k.get("kid") != public.kid:
        raise ConfigError(
            f"{where}: kid {k.get('kid')!r} does not match its key (expected {public.kid})",
            file=str(path),
            hint="restore the file from git",
        )
    return SignerRecord(k["name"], public.text, public.kid, _time(k.get("created"), f"{where}.created", path))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _under_lock(fn: Callable[Concatenate[Path, str, _P], _R]) -> Callable[Concatenate[Path, str, _P], _R]:
    """Registry edits are read-modify-write: hold the registry file's lock (the same lock sealed
    files take) from the read to the rename, so concurrent edits never lose each other's update."""

    @functools.wraps(fn)
    def inner(root: Path, env: str, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with locked(root / KEYS_DIR / f"{env}.yaml"):
            return fn(root, env, *args, **kwargs)

    return inner


@_under_lock
def add_signer(root: Path, env: str, name: str, key: str, *, now: dt.datetime | None = None) -> SignerRecord:
    """Allow a signer (its public key) to sign documents of `env`."""
    from ._signing import check_name, parse_signer_public

    check_name(name)
    public = parse_signer_public(key)
    reg = Registry.load(root, env)
    if reg.find_signer(public.kid) is not None:
        raise ConfigError(f"signer key {public.kid} is already allowed for {env}", file=str(reg.path))
    record = SignerRecord(name, public.text, public.kid, _now(now))
    reg.signers.append(record)
    reg.save()
    return record


@_under_lock
def remove_signer(root: Path, env: str, which: str) -> list[SignerRecord]:
    """Stop allowing a signer (by name: all its keys; or by key id). Documents it signed then fail."""
    reg = Registry.load(root, env)
    gone = [s for s in reg.signers if which in (s.name, s.kid)]
    if not gone:
        raise UsageError(f"environment {env!r} has no signer {which!r}", hint="see: sealer signers list")
    reg.signers = [s for s in reg.signers if s not in gone]
    reg.save()
    return gone


def _time(value: Any, where: str, path: Path) -> dt.datetime:
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"{where} is not an ISO 8601 time", file=str(path), hint="restore the file from git"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    """A time given on the command line: ISO 8601 (date or date-time, UTC unless stated) or `now`."""
    if text == "now":
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is not a time", hint="use ISO 8601, e.g. 2026-11-25T12:00:00Z, or now") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)


def _write_identity_file(
    root: Path,
    env: str,
    out: Path | None,
    force: bool,
    identity: Any,
    *,
    recovery: bool = False,
    passphrase: bytes | None = None,
) -> Path:
    from ._identities import user_config_dir, write_identity_file

    if out is None:
        out = user_config_dir() / "identities" / f"{env}-{identity.kid}.txt"
    out = out.absolute()
    refuse_inside(out, root, force=force)
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_identity_file(
        out,
        identity,
        comment_lines=[f"sealer environment: {env}{' (recovery key)' if recovery else ''}"],
        passphrase=passphrase,
    )
    return out


def _env_kind(reg: Registry) -> str:
    """The kind of an environment: post-quantum if one of its active environment keys is."""
    pq = any(k.post_quantum for k in reg.current() if k.role == "environment")
    return "mlkem768x25519" if pq else "x25519"


def _append_checked(reg: Registry, new: KeyRecord, change: str, allow_mixed_kinds: bool) -> None:
    """Add `new` to `reg`, refusing a key change that would leave it mixing kinds unless opted in;
    record the opt-in."""
    reg.keys.append(new)
    reg.check_kinds(change=change, new=new, allow=allow_mixed_kinds)
    if allow_mixed_kinds and all(reg.kinds()):
        reg.allow_mixed_kinds = True


def _add_pair(
    reg: Registry,
    root: Path,
    env: str,
    kind: str,
    change: Callable[[KeyRecord], str],
    *,
    out: Path | None,
    force: bool,
    allow_mixed_kinds: bool,
    now: dt.datetime | None,
    recovery: bool = False,
    label: str = "",
    passphrase: bytes | None = None,
) -> tuple[KeyRecord, Path]:
    """A new key pair of `kind` for `env`: its public half added to `reg` (`change` describes that for
    `check_kinds`), its private half written (encrypted to `passphrase` when given), `reg` saved."""
    from ._hardening import harden
    from ._keys import generate_identity

    harden()  # this process now holds a private key
    identity = generate_identity(kind)
    role = "recovery" if recovery else "environment"
    record = KeyRecord(identity.kid, identity.recipient.encode(), _now(now), "active", role, label)
    # Checked before the private key is written: a refused key leaves nothing behind.
    _append_checked(reg, record, change(record), allow_mixed_kinds)
    path = _write_identity_file(root, env, out, force, identity, recovery=recovery, passphrase=passphrase)
    reg.save()
    return record, path


@_under_lock
def generate_key(
    root: Path,
    env: str,
    *,
    out: Path | None = None,
    force: bool = False,
    add: bool = False,
    kind: str | None = None,
    recovery: bool = False,
    label: str = "",
    allow_mixed_kinds: bool = False,
    now: dt.datetime | None = None,
    passphrase: bytes | None = None,
) -> tuple[KeyRecord, Path]:
    """Make a key pair for `env`: the public half goes to the registry, the private half to `out`
    (default: the user's config dir), mode 0600, never inside the repository unless forced. With
    `passphrase`, the private half is an age scrypt file (`_identities.write_identity_file`).

    `kind` defaults to the environment's (post-quantum if its active key is, else X25519).
    `recovery` makes a break-glass recipient instead of an active environment key. A key that would
    mix post-quantum and classic kinds is refused unless `allow_mixed_kinds` (`Registry.check_kinds`)."""
    reg = Registry.load(root, env)
    active = [k for k in reg.current() if k.role == "environment"]
    if active and not add and not recovery:
        raise Refused(
            f"environment {env!r} already has an active key ({active[0].kid})",
            hint=f"to replace it run: sealer keys rotate {env}; to add another: --add",
        )
    return _add_pair(
        reg,
        root,
        env,
        kind or _env_kind(reg),
        lambda record: f"add {record.describe()} to {env}",
        out=out,
        force=force,
        allow_mixed_kinds=allow_mixed_kinds,
        now=now,
        recovery=recovery,
        label=label,
        passphrase=passphrase,
    )


@_under_lock
def rotate_key(
    root: Path,
    env: str,
    *,
    out: Path | None = None,
    force: bool = False,
    kind: str | None = None,
    allow_mixed_kinds: bool = False,
    now: dt.datetime | None = None,
) -> tuple[KeyRecord, list[KeyRecord], Path]:
    """A new active key; the previous active environment keys become `retiring` (they still open
    values until `sealer reseal` has moved everything off them and a custodian retires them).

    Retiring keys get no new values, so rotating a classic environment to post-quantum (`kind`
    mlkem768x25519) mixes nothing; a classic recovery key left beside the new key would, and is
    refused unless `allow_mixed_kinds` (`Registry.check_kinds`)."""
    reg = Registry.load(root, env)
    previous = [k for k in reg.keys if k.state == "active" and k.role == "environment"]
    # Keep the environment's kind unless told otherwise: a post-quantum environment stays one.
    kind = kind or (previous[-1].kind if previous and previous[-1].kind in ("x25519", "mlkem768x25519") else "x25519")
    for k in previous:
        k.state = "retiring"
    record, path = _add_pair(
        reg,
        root,
        env,
        kind,
        lambda record: f"rotate {env} to {record.describe()}",
        out=out,
        force=force,
        allow_mixed_kinds=allow_mixed_kinds,
        now=now,
    )
    return record, previous, path


@_under_lock
def add_key(
    root: Path,
    env: str,
    recipient: str,
    *,
    recovery: bool = False,
    label: str = "",
    allow_mixed_kinds: bool = False,
    now: dt.datetime | None = None,
) -> KeyRecord:
    """Register a public key made elsewhere (age-keygen, an offline machine) as active, or as a
    recovery (break-glass) recipient that every value of the environment is also sealed to.
    A key that would mix post-quantum and classic kinds is refused unless `allow_mixed_kinds`."""
    rec = parse_recipient(recipient.strip())
    reg = Registry.load(root, env)
    if reg.find(rec.kid) is not None:
        raise ConfigError(f"key {rec.kid} is already registered for {env}", file=str(reg.path))
    record = KeyRecord(rec.kid, rec.encode(), _now(now), "active", "recovery" if recovery else "environment", label)
    _append_checked(reg, record, f"add {record.describe()} to {env}", allow_mixed_kinds)
    reg.save()
    return record


@_under_lock
def set_state(root: Path, env: str, kid: str, state: str) -> KeyRecord:
    reg = Registry.load(root, env)
    record = reg.require(kid)
    if record.state == "active" and record.role == "environment" and state == "retired":
        others = [k for k in reg.current() if k.role == "environment" and k.kid != kid]
        if not others:
            raise UsageError(f"{kid} is the only active key of {env}", hint=f"rotate first: sealer keys rotate {env}")
    record.state = state
    reg.save()
    return record


@_under_lock
def revoke_before(root: Path, env: str, when: dt.datetime) -> Registry:
    """Refuse every value of `env` sealed before `when` (after a leak): they must be set afresh."""
    reg = Registry.load(root, env)
    reg.not_before = when
    reg.save()
    return reg
