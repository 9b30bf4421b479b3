"""The public-key registry, `keys/ENV.yaml`: every key an environment ever had, with its state.

It is committed and reviewed like code; sealing reads it to learn the current recipients, so
a developer needs nothing else to seal. Private keys never come near it.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import KEYS_DIR, load_yaml_mapping
from .errors import ConfigError
from .fsio import atomic_write
from .keys import Recipient, kid_of, parse_recipient

STATES = ("active", "retiring", "retired")


@dataclass
class KeyRecord:
    kid: str
    recipient: str
    created: dt.datetime
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "recipient": self.recipient,
            "created": iso(self.created),
            "state": self.state,
        }


@dataclass
class Registry:
    """keys/ENV.yaml: every key the environment ever had, with its state."""

    path: Path
    env: str
    keys: list[KeyRecord]

    @classmethod
    def load(cls, root: Path, env: str) -> Registry:
        path = root / KEYS_DIR / f"{env}.yaml"
        if not path.exists():
            return cls(path, env, [])
        data = load_yaml_mapping(path)
        raw = data.get("keys") or []
        if not isinstance(raw, list):
            raise ConfigError("'keys' must be a list", file=str(path))
        keys = []
        for i, k in enumerate(raw):
            where = f"keys[{i}]"
            if not isinstance(k, dict) or not isinstance(k.get("recipient"), str):
                raise ConfigError(
                    f"{where} needs a 'recipient'", file=str(path), hint="restore the file from git"
                )
            rec = parse_recipient(k["recipient"]).encode()
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
            created = k.get("created")
            try:
                when = (
                    created if isinstance(created, dt.datetime) else dt.datetime.fromisoformat(str(created))
                )
            except ValueError:
                raise ConfigError(f"{where}: 'created' is not an ISO 8601 time", file=str(path)) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            keys.append(KeyRecord(kid, rec, when, state))
        return cls(path, env, keys)

    def current(self) -> list[KeyRecord]:
        """The keys new values are sealed to."""
        return [k for k in self.keys if k.state == "active"]

    def recipients(self) -> list[Recipient]:
        return [parse_recipient(k.recipient) for k in self.current()]

    def find(self, kid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def save(self) -> None:
        from ruamel.yaml import YAML

        buf = io.StringIO()
        buf.write(f"# Public keys of environment {self.env}. Managed by `sealer keys`; safe to commit.\n")
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.dump({"env": self.env, "keys": [k.to_dict() for k in self.keys]}, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, buf.getvalue().encode())


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_key(
    root: Path,
    env: str,
    *,
    out: Path | None = None,
    force: bool = False,
    add: bool = False,
    now: dt.datetime | None = None,
) -> tuple[KeyRecord, Path]:
    """Make an X25519 key pair for `env`: the public half goes to the registry, the private half
    to `out` (default: the user's config dir), mode 0600, never inside the repository unless forced."""
    from .errors import UsageError
    from .identities import user_config_dir, write_identity_file
    from .keys import generate_identity

    reg = Registry.load(root, env)
    if reg.current() and not add:
        raise UsageError(
            f"environment {env!r} already has an active key ({reg.current()[0].kid})",
            hint="pass --add to make another active key",
        )
    identity = generate_identity()
    kid = identity.kid
    if out is None:
        out = user_config_dir() / "identities" / f"{env}-{kid}.txt"
    out = out.absolute()
    if _inside(out, root) and not force:
        raise UsageError(
            f"refusing to write a private key inside the repository ({out})",
            hint="choose --out outside it, or pass --force if you really mean it",
        )
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    write_identity_file(out, identity, comment_lines=[f"sealer environment: {env}"])
    record = KeyRecord(kid, identity.recipient.encode(), when, "active")
    reg.keys.append(record)
    reg.save()
    return record, out


def add_key(root: Path, env: str, recipient: str, *, now: dt.datetime | None = None) -> KeyRecord:
    """Register a public key made elsewhere (age-keygen, an offline machine) as active."""
    rec = parse_recipient(recipient.strip())
    reg = Registry.load(root, env)
    if reg.find(rec.kid) is not None:
        raise ConfigError(f"key {rec.kid} is already registered for {env}", file=str(reg.path))
    record = KeyRecord(
        rec.kid, rec.encode(), (now or dt.datetime.now(dt.UTC)).replace(microsecond=0), "active"
    )
    reg.keys.append(record)
    reg.save()
    return record


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
