"""The public-key registry, `keys/ENV.yaml`: every key an environment ever had, with its state.

It is committed and reviewed like code; sealing reads it to learn the current recipients, so
a developer needs nothing else to seal. Private keys never come near it.

Lifecycle: a key is `active` (new values are sealed to it), then `retiring` after a rotation (still
opens values, no new ones), then `retired` (opens nothing at deploy time). Recovery (break-glass)
recipients are sealed to alongside the active keys. `not_before` revokes every value sealed earlier.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import KEYS_DIR, load_yaml_mapping
from ._fsio import atomic_write, refuse_inside
from ._keys import Recipient, kid_of, parse_recipient
from .errors import ConfigError, KeyFormatError, UsageError

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

    @classmethod
    def load(cls, root: Path, env: str) -> Registry:
        path = root / KEYS_DIR / f"{env}.yaml"
        if not path.exists():
            return cls(path, env, [])
        data = load_yaml_mapping(path)
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
        return cls(path, env, keys, _time(nb, "not_before", path) if nb is not None else None, signers=signers)

    def current(self) -> list[KeyRecord]:
        """The keys new values are sealed to: active environment keys, then active recovery keys."""
        active = [k for k in self.keys if k.state == "active"]
        return [k for k in active if k.role == "environment"] + [k for k in active if k.role == "recovery"]

    def recipients(self) -> list[Recipient]:
        if self._recipients is None:
            self._recipients = [parse_recipient(k.recipient) for k in self.current()]
        return self._recipients

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
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.dump(data, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, buf.getvalue().encode())
        self._recipients = None


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


def _new_identity_file(root: Path, env: str, out: Path | None, force: bool, kind: str) -> tuple[Any, Path]:
    from ._identities import user_config_dir, write_identity_file
    from ._keys import generate_identity

    identity = generate_identity(kind)
    if out is None:
        out = user_config_dir() / "identities" / f"{env}-{identity.kid}.txt"
    out = out.absolute()
    refuse_inside(out, root, force=force)
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_identity_file(out, identity, comment_lines=[f"sealer environment: {env}"])
    return identity, out


def generate_key(
    root: Path,
    env: str,
    *,
    out: Path | None = None,
    force: bool = False,
    add: bool = False,
    kind: str = "x25519",
    now: dt.datetime | None = None,
) -> tuple[KeyRecord, Path]:
    """Make an X25519 key pair for `env`: the public half goes to the registry, the private half
    to `out` (default: the user's config dir), mode 0600, never inside the repository unless forced."""
    reg = Registry.load(root, env)
    active = [k for k in reg.current() if k.role == "environment"]
    if active and not add:
        raise UsageError(
            f"environment {env!r} already has an active key ({active[0].kid})",
            hint=f"to replace it run: sealer keys rotate {env}; to add another: --add",
        )
    identity, path = _new_identity_file(root, env, out, force, kind)
    record = KeyRecord(identity.kid, identity.recipient.encode(), _now(now), "active")
    reg.keys.append(record)
    reg.save()
    return record, path


def rotate_key(
    root: Path,
    env: str,
    *,
    out: Path | None = None,
    force: bool = False,
    kind: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[KeyRecord, list[KeyRecord], Path]:
    """A new active key; the previous active environment keys become `retiring` (they still open
    values until `sealer reseal` has moved everything off them and a custodian retires them)."""
    reg = Registry.load(root, env)
    previous = [k for k in reg.keys if k.state == "active" and k.role == "environment"]
    # Keep the environment's kind unless told otherwise: a post-quantum environment stays one.
    kind = kind or (previous[-1].kind if previous and previous[-1].kind in ("x25519", "mlkem768x25519") else "x25519")
    identity, path = _new_identity_file(root, env, out, force, kind)
    for k in previous:
        k.state = "retiring"
    record = KeyRecord(identity.kid, identity.recipient.encode(), _now(now), "active")
    reg.keys.append(record)
    reg.save()
    return record, previous, path


def add_key(
    root: Path, env: str, recipient: str, *, recovery: bool = False, label: str = "", now: dt.datetime | None = None
) -> KeyRecord:
    """Register a public key made elsewhere (age-keygen, an offline machine) as active, or as a
    recovery (break-glass) recipient that every value of the environment is also sealed to."""
    rec = parse_recipient(recipient.strip())
    reg = Registry.load(root, env)
    if reg.find(rec.kid) is not None:
        raise ConfigError(f"key {rec.kid} is already registered for {env}", file=str(reg.path))
    record = KeyRecord(rec.kid, rec.encode(), _now(now), "active", "recovery" if recovery else "environment", label)
    reg.keys.append(record)
    reg.save()
    return record


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


def revoke_before(root: Path, env: str, when: dt.datetime) -> Registry:
    """Refuse every value of `env` sealed before `when` (after a leak): they must be set afresh."""
    reg = Registry.load(root, env)
    reg.not_before = when
    reg.save()
    return reg
