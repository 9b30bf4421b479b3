"""The controller's state dir: what was applied, kept across restarts, and the lock that keeps two
controllers off one state dir.

The state file is what makes the no-change path cheap (compare two commit ids) and what the
rollback check compares against; it holds names, kids, times and counts, never a value.
Layout of the state dir (mode 0700)::

    lock            flock'ed while a controller runs
    state.json      the applied commit and what the metrics need after a restart (mode 0600)
    mirror.git/     a bare git mirror of the followed branch (sealed files only: it is the repo)
    checkout/       a name only: messages about the commit's .sealer.yaml and keys/ are made relative to it
    audit.log       the default audit log
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._fsio import atomic_write
from .errors import StateError

STATE_VERSION = 1


@dataclass
class KeyInfo:
    kid: str
    created: float  # unix seconds
    state: str


@dataclass
class State:
    """What is applied. `envs` and `target` say for which settings; a change of either re-renders."""

    commit: str | None = None
    applied_at: float | None = None
    envs: list[str] = field(default_factory=list)
    target: str = ""
    files: int = 0
    values: int = 0
    oldest: dict[str, int] = field(default_factory=dict)  # env -> seal time of its oldest value
    keys: dict[str, list[KeyInfo]] = field(default_factory=dict)  # env -> keys the controller accepts
    expiries: dict[str, list[int]] = field(default_factory=dict)  # env -> expiry of each applied value that has one
    warn_before: dict[str, int] = field(default_factory=dict)  # env -> its policy's warn_before, seconds

    def to_json(self) -> bytes:
        data = {"version": STATE_VERSION, **asdict(self)}
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, source: str) -> State:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
                raise ValueError("version")
            keys = {
                str(env): [KeyInfo(str(k["kid"]), float(k["created"]), str(k["state"])) for k in ks]
                for env, ks in (raw.get("keys") or {}).items()
            }
            return cls(
                commit=raw.get("commit"),
                applied_at=raw.get("applied_at"),
                envs=[str(e) for e in raw.get("envs") or []],
                target=str(raw.get("target") or ""),
                files=int(raw.get("files") or 0),
                values=int(raw.get("values") or 0),
                oldest={str(k): int(v) for k, v in (raw.get("oldest") or {}).items()},
                keys=keys,
                expiries={str(k): sorted(int(t) for t in v) for k, v in (raw.get("expiries") or {}).items()},
                warn_before={str(k): int(v) for k, v in (raw.get("warn_before") or {}).items()},
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise StateError(
                "the controller's state file is unreadable",
                file=source,
                hint="delete it to start over (the next sync then accepts any commit of the branch)",
            ) from None


class StateDir:
    """The state dir, locked for the lifetime of this object's owner."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.path, 0o700)
        except OSError as e:
            raise StateError(f"cannot create the state dir: {e.strerror}", file=str(self.path)) from None
        self._lock_fd: int | None = None

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def mirror(self) -> Path:
        return self.path / "mirror.git"

    @property
    def checkout(self) -> Path:
        return self.path / "checkout"

    @property
    def audit_log(self) -> Path:
        return self.path / "audit.log"

    def lock(self) -> None:
        """Take the state dir; a second controller on it gets a clear error instead of a race."""
        import fcntl

        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateError(
                "another controller is using this state dir",
                file=str(self.path),
                hint="give each controller its own --state-dir",
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> State:
        try:
            data = self.state_file.read_bytes()
        except FileNotFoundError:
            return State()
        except OSError as e:
            raise StateError(f"cannot read: {e.strerror}", file=str(self.state_file)) from None
        return State.from_json(data, str(self.state_file))

    def save(self, state: State) -> None:
        try:
            atomic_write(self.state_file, state.to_json(), mode=0o600)
        except OSError as e:
            raise StateError(f"cannot write: {e.strerror}", file=str(self.state_file)) from None


def in_use(path: Path) -> bool | None:
    """Whether a controller holds the state dir at `path` now: None if that cannot be told (no
    such state dir here, or not ours to open). The look takes the lock for an instant, and never
    creates anything."""
    import fcntl

    try:
        fd = os.open(path / "lock", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing releases a lock this look took
    return False
