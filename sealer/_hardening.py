"""Protecting a process that holds private keys: no core dumps, no same-user inspection, and no key
left in the environment block that `/proc/PID/environ` shows.

Two rules, one home:

- `harden()`: `PR_SET_DUMPABLE 0` (Linux) and a soft `RLIMIT_CORE` of 0, as ssh-agent does. A core
  dump would hold the raw keys; a non-dumpable process also refuses `ptrace` and hides its
  `/proc/PID/{environ,mem,maps}` from other processes of the same user (root keeps CAP_SYS_PTRACE).
  The hard limit is left alone, so a program that `sealer exec` runs may raise the soft limit again.
  Both settings survive `fork`; `execve` resets the dumpable flag, so a process started from a fresh
  interpreter (a forkserver's worker) calls `harden()` itself.
- `forget_environ(names)`: remove variables from this process's environment for good. `del
  os.environ[NAME]` calls unsetenv(3), which only drops the pointer from `environ`: the kernel's
  `/proc/PID/environ` reads the environment block the process was started with, and that block
  still holds `NAME=value`. So the entry is also overwritten with NUL bytes in that block, which is
  this process's own writable memory (`env_start`..`env_end` from `/proc/self/stat`).

Everything here is best effort where the platform lacks the mechanism (no prctl, no /proc), and
never raises: a process that cannot be hardened still works.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["forget_environ", "harden", "is_dumpable"]

_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3
_hardened_pid: int | None = None


def _prctl(option: int, arg: int = 0) -> int | None:
    """prctl(2), or None where there is none (not Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        result: int = libc.prctl(option, arg, 0, 0, 0)
    except (AttributeError, OSError):
        return None
    return result


def harden() -> None:
    """No core dumps of this process, and no same-user debugger or /proc reader (idempotent)."""
    global _hardened_pid
    if _hardened_pid == os.getpid():
        return
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover - no RLIMIT_CORE here
        pass
    _prctl(_PR_SET_DUMPABLE, 0)
    _hardened_pid = os.getpid()


def is_dumpable() -> bool | None:
    """Whether this process may be core-dumped or traced (None: the platform cannot say)."""
    result = _prctl(_PR_GET_DUMPABLE)
    return None if result is None or result < 0 else result != 0


def forget_environ(names: Iterable[str]) -> None:
    """Remove `names` from this process's environment, and from the block /proc/PID/environ shows."""
    wanted = [name for name in names if name and "=" not in name]
    for name in wanted:
        os.environ.pop(name, None)
    _scrub_initial_block(wanted)


def _scrub_initial_block(names: list[str]) -> None:
    """Overwrite `NAME=value` entries of the environment block this process was started with.

    The block's bounds come from the kernel (/proc/self/stat fields 50 and 51, Linux 3.5+); it is
    written only if its bytes are exactly what /proc/self/environ shows, entry by entry at NUL
    boundaries, so a wrong address can never be written to."""
    if not names:
        return
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # fields 50, 51: env_start, env_end
        with open("/proc/self/environ", "rb") as f:
            shown = f.read()
    except (OSError, IndexError, ValueError):
        return  # no /proc (not Linux): there is no such block to read either
    if not 0 < start < end or end - start != len(shown):
        return
    import ctypes

    if ctypes.string_at(start, end - start) != shown:
        return
    prefixes = tuple(f"{name}=".encode() for name in names)
    offset = 0
    for entry in shown.split(b"\0"):
        if entry.startswith(prefixes):
            ctypes.memset(start + offset, 0, len(entry))
        offset += len(entry) + 1
