"""Where rendered plaintext goes: `dir:PATH`, `files:PATH` or `cmd:COMMAND`.

Directory targets are swapped whole: everything is written into a new directory next to PATH
(mode 0700, files 0600), synced to disk, then exchanged with PATH in one `renameat2(RENAME_EXCHANGE)`
call, so a reader sees the old tree or the new one, never a mix, and PATH stays a real directory
(`kubectl apply -f PATH` does not follow a symlinked directory). Where the exchange is not
available (not Linux, or a filesystem without it) the swap is two renames with a moment in
between where PATH is absent; the log says so once.

A directory target belongs to the controller that wrote it: its `.sealer-output` marker names the
commit, the target, the state dir, the repository, the branch and the environments. Another
controller refuses it (at start-up, at every sync, on /readyz, and if it is swapped in under a
render) when the marker names other environments, another repository or branch, or a controller
that is still running (its state dir locked) or cannot be seen from here. One of the same
repository, branch and environments takes over a target whose writer has stopped. A controller
renders again whenever the marker does not say exactly what it applied.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._fsio import fsync_dir
from ..errors import UsageError
from .errors import ApplyError, RenderError, TargetRefused
from .log import EventLog
from .state import in_use

MARKER = ".sealer-output"  # inside a directory target: what is there, from which commit, whose
MAX_MARKER_BYTES = 64 * 1024
_RENAME_EXCHANGE = 2
_NOTED: set[str] = set()


class Target(ABC):
    kind: str

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.owner: dict[str, Any] = {}  # the controller writing this target (claim())

    def claim(self, state_dir: Path, *, repo: str, branch: str, envs: Sequence[str]) -> None:
        """Write this target for the controller of `state_dir`, following `branch` of `repo` (no
        credentials in it) for `envs`; refuse (TargetRefused) one another controller owns."""
        self.owner = {"state_dir": str(state_dir.absolute()), "repo": repo, "branch": branch, "envs": list(envs)}
        self.check()

    @abstractmethod
    def holds(self, commit: str, envs: Sequence[str]) -> bool:
        """Whether the target still holds exactly what this controller applied (`commit` for
        `envs`): no-change cycles check only this. Raises TargetRefused if another controller's
        output is there."""

    def foreign(self) -> str | None:
        """Who else wrote the target, when another controller did (for /readyz); else None."""
        return None

    @abstractmethod
    def apply(self, outputs: Sequence[tuple[str, bytes]], *, commit: str, envs: Sequence[str]) -> None:
        """Put the outputs in place, all or nothing; raise ApplyError (or RenderError) otherwise."""

    @abstractmethod
    def check(self) -> None:
        """Refuse an unusable target at start-up, before anything is fetched."""


class TreeTarget(Target):
    """`dir:` and `files:`: a directory of files, swapped atomically."""

    def __init__(self, spec: str, path: Path, log: EventLog | None = None) -> None:
        super().__init__(spec)
        self.path = path.absolute()
        self.log = log or EventLog()

    @property
    def _prefix(self) -> str:
        return f".{self.path.name}.sealer-"

    def _marker(self, root: Path | None = None) -> dict[str, Any] | None:
        """The marker of the tree at `root` (default: the target): None if there is none, {} if it
        is not one sealer wrote (unreadable, a link, not a JSON object)."""
        try:
            fd = os.open((root or self.path) / MARKER, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return {}
        try:
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_MARKER_BYTES + 1)
            marker = json.loads(data) if len(data) <= MAX_MARKER_BYTES else None
        except (OSError, ValueError):
            return {}
        return marker if isinstance(marker, dict) else {}

    def _other_owner(self, marker: dict[str, Any] | None) -> str | None:
        """The other controller owning the tree a marker describes, or None: the marker is ours,
        names no owner (written before markers did), or names a stopped controller of the same
        repository, branch and environments (so we take over)."""
        mine = self.owner
        theirs = marker.get("state_dir") if marker else None
        if marker is None or theirs is None or not mine or theirs == mine["state_dir"]:
            return None
        envs = marker.get("envs")
        who = f"the controller with state dir {theirs}"
        if not isinstance(envs, list) or sorted(map(str, envs)) != sorted(mine["envs"]):
            return f"{who}, for environments {','.join(map(str, envs)) if isinstance(envs, list) else '?'}"
        if (marker.get("repo"), marker.get("branch")) != (mine["repo"], mine["branch"]):
            return f"{who}, for branch {marker.get('branch')} of {marker.get('repo')}"
        if in_use(Path(str(theirs))) is not False:
            return f"{who}, which is running (or not visible from here)"
        return None

    def _refuse_other(self, other: str) -> TargetRefused:
        return TargetRefused(
            f"target {self.path} belongs to {other}",
            hint="give each controller its own target; if that controller is gone for good, remove the directory",
        )

    def foreign(self) -> str | None:
        return self._other_owner(self._marker())

    def holds(self, commit: str, envs: Sequence[str]) -> bool:
        marker = self._marker()
        other = self._other_owner(marker)
        if other is not None:
            raise self._refuse_other(other)
        if not marker:
            return False
        return all(marker.get(k) == v for k, v in self._identity(commit, envs).items())

    def _identity(self, commit: str, envs: Sequence[str]) -> dict[str, Any]:
        """What the marker must say for the target to hold this controller's output of `commit`."""
        return {**self.owner, "commit": commit, "envs": list(envs), "target": self.spec}

    def check(self) -> None:
        p = self.path
        if p.is_symlink() or (p.exists() and not p.is_dir()):
            raise TargetRefused(f"target {p} exists and is not a directory")
        if p == Path(p.anchor):
            raise UsageError("the target cannot be the root directory")
        if not p.is_dir():
            return
        marker = self._marker()
        if marker is None and not any(p.iterdir()):
            return
        if not marker or "commit" not in marker:
            raise TargetRefused(
                f"target {p} is a directory sealer did not write, and it is not empty",
                hint="point the target at a new or empty directory: it is replaced as a whole",
            )
        other = self._other_owner(marker)
        if other is not None:
            raise self._refuse_other(other)

    def apply(self, outputs: Sequence[tuple[str, bytes]], *, commit: str, envs: Sequence[str]) -> None:
        try:
            self.check()
        except UsageError as e:  # someone put something else there since start-up
            raise ApplyError(str(e)) from None
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise ApplyError(f"cannot create {parent}: {e.strerror}") from None
        self.clean_stale()
        new = parent / f"{self._prefix}new-{commit[:12]}-{secrets.token_hex(4)}"
        try:
            os.mkdir(new, 0o700)
            os.chmod(new, 0o700)
            for rel, data in outputs:
                _write_new(new, rel, data)
            marker = {**self._identity(commit, envs), "files": len(outputs), "written_at": int(time.time())}
            _write_new(new, MARKER, (json.dumps(marker, sort_keys=True) + "\n").encode())
            _sync_tree(new)
            self._swap(new)
        except (RenderError, TargetRefused):
            _remove(new)
            raise
        except OSError as e:
            _remove(new)
            raise ApplyError(f"cannot write the target: {e.strerror}", file=str(self.path)) from None
        except BaseException:
            _remove(new)
            raise

    def _swap(self, new: Path) -> None:
        """Put `new` in place. The tree it displaces is looked at once more: if another controller
        swapped its output in after our check, it is put back and the apply is refused."""
        parent = self.path.parent
        if not self.path.exists():
            os.rename(new, self.path)
        elif _exchange(new, self.path):
            other = self._other_owner(self._marker(new))  # `new` now holds the previous output
            if other is not None:
                _exchange(new, self.path)
                raise self._refuse_other(other)
            _remove(new)
        else:
            if "exchange" not in _NOTED:
                _NOTED.add("exchange")
                self.log(
                    "swap-not-atomic",
                    level="warn",
                    target=str(self.path),
                    detail="renameat2(RENAME_EXCHANGE) unavailable; swapping with two renames",
                )
            old = parent / f"{self._prefix}old-{secrets.token_hex(4)}"
            os.rename(self.path, old)
            other = self._other_owner(self._marker(old))
            if other is not None:
                os.rename(old, self.path)
                raise self._refuse_other(other)
            os.rename(new, self.path)
            _remove(old)
        fsync_dir(parent)

    def clean_stale(self) -> None:
        """Remove half-written or old generations a crash left next to the target (they may hold
        plaintext)."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(self._prefix) and entry.is_dir(follow_symlinks=False):
                    _remove(Path(entry.path))


class CmdTarget(Target):
    """`cmd:COMMAND`: the manifests go to the command's stdin (e.g. `kubectl apply -f -`).

    No shell; the command's stdout is discarded (it could echo what it was given) and its stderr is
    passed through; sealer's own SEALER_IDENTITY* variables are not passed on.
    """

    kind = "cmd"

    def __init__(self, spec: str, argv: list[str], *, timeout: float = 300.0) -> None:
        super().__init__(spec)
        self.argv = argv
        self.timeout = timeout

    def holds(self, commit: str, envs: Sequence[str]) -> bool:
        return True  # nothing of ours to look at: what the command did is its own state

    def check(self) -> None:
        if shutil.which(self.argv[0]) is None:
            raise UsageError(f"target command not found: {self.argv[0]}")

    def apply(self, outputs: Sequence[tuple[str, bytes]], *, commit: str, envs: Sequence[str]) -> None:
        stream = b"".join(data for _, data in outputs)
        if not stream:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALER_IDENTITY")}
        env["SEALER_COMMIT"] = commit
        try:
            proc = subprocess.run(
                self.argv,
                input=stream,
                stdout=subprocess.DEVNULL,
                stderr=None,
                env=env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ApplyError(f"target command not found: {self.argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise ApplyError(f"target command {self.argv[0]} did not finish within {self.timeout:g} s") from None
        except OSError as e:
            raise ApplyError(f"cannot run target command {self.argv[0]}: {e.strerror}") from None
        if proc.returncode != 0:
            how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited {proc.returncode}"
            raise ApplyError(f"target command {self.argv[0]} {how}")


class DirTarget(TreeTarget):
    kind = "dir"


class FilesTarget(TreeTarget):
    kind = "files"


def parse_target(spec: str, *, log: EventLog | None = None, cmd_timeout: float = 300.0) -> Target:
    kind, sep, rest = spec.partition(":")
    if not sep or not rest.strip():
        raise UsageError(f"bad target {spec!r}", hint="use dir:PATH, files:PATH or cmd:COMMAND")
    if kind == "dir":
        return DirTarget(spec, Path(rest).expanduser(), log)
    if kind == "files":
        return FilesTarget(spec, Path(rest).expanduser(), log)
    if kind == "cmd":
        try:
            argv = shlex.split(rest)
        except ValueError:
            raise UsageError("target command has unbalanced quotes") from None
        if not argv:
            raise UsageError("target command is empty")
        return CmdTarget(spec, argv, timeout=cmd_timeout)
    raise UsageError(f"unknown target kind {kind!r}", hint="use dir:PATH, files:PATH or cmd:COMMAND")


def _write_new(root: Path, rel: str, data: bytes) -> None:
    """Create root/rel (0600, parents 0700); never follow a link, never overwrite."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise RenderError(f"unsafe output path {rel!r}")
    directory = root
    for part in parts[:-1]:  # each level 0700 (Path.mkdir(parents=True) would use the umask above)
        directory = directory / part
        try:
            os.mkdir(directory, 0o700)
            os.chmod(directory, 0o700)
        except FileExistsError:
            if directory.is_symlink() or not directory.is_dir():
                raise RenderError(f"output path {rel!r} runs through a file") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(directory / parts[-1], flags, 0o600)
    except FileExistsError:
        raise RenderError(f"two outputs are named {rel} (the same object is defined twice)") from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _sync_tree(root: Path) -> None:
    """Make the new tree durable before it becomes visible: one syncfs(2) of its filesystem where
    available (10,000 fsyncs would cost seconds), else fsync of every file and directory."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            fd = os.open(root, os.O_RDONLY)
            try:
                if _libc().syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two directories (Linux renameat2). False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        fn = _libc().renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    import errno

    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err))


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
