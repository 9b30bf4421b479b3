"""Worker processes that die with their parent: the one process pool of reseal, scan and the controller.

Workers hold private keys, may ignore SIGTERM, and block on a queue whose write end they share, so
nothing would ever end them once their parent is gone: a `kill -9` of the parent (an OOM kill, a
crash) must take them along. Each worker asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG; elsewhere a thread watches the parent), lets go of the forkserver so that it
exits with the owner, then checks that its parent is still the pool's owner, or the owner's
forkserver, before the caller's initializer runs.

multiprocessing and concurrent.futures are imported on first use: `sealer --help` never pays for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Start = Literal["fork", "forkserver"]


def start_method(start: Start) -> str:
    """The start method `worker_pool(start=...)` uses here: `start`, or spawn where it is missing.

    fork is fast and lets the parent hand state to workers by inheritance (set it before the pool
    starts); it is unsafe in a multi-threaded process, which should ask for forkserver.
    """
    import multiprocessing

    return start if start in multiprocessing.get_all_start_methods() else "spawn"


def worker_pool(
    workers: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    *,
    start: Start = "fork",
    preload: Sequence[str] = (),
) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor of `workers` processes that die with the process that made it.

    `initializer(*initargs)` runs once in each worker, after it is tied to its parent; with
    forkserver or spawn both are pickled, so the initializer must be importable by name. `preload`:
    modules the forkserver imports once, for every worker it forks (a no-op once it is running).
    With fork, make and use the pool from a thread that outlives it: the kernel counts the thread
    that forked a worker as its parent.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context(start_method(start))
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload([__name__, *preload])
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_start, initargs=(os.getpid(), initializer, initargs)
    )


def _worker_start(owner: int, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    """In each worker, first: die with the parent, and never outlive an owner that is already gone."""
    __import__("sealer._hardening", fromlist=["harden"]).harden()  # no core dump holds a worker's keys
    parent = os.getppid()
    _die_with_parent(parent)
    _release_forkserver()
    # The parent may have died before the kernel took the request: this process then already
    # belongs to init (or a subreaper), and nothing will ever end it.
    if os.getppid() != parent or not _owned_by(parent, owner):
        os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def _die_with_parent(parent: int) -> None:
    import signal

    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # PR_SET_PDEATHSIG (Linux)
            raise OSError(ctypes.get_errno(), "prctl")
    except (AttributeError, OSError):  # not Linux: watch for the parent to change instead
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(1)

        threading.Thread(target=watch, name="sealer-parent-watch", daemon=True).start()


def _release_forkserver() -> None:
    """Close this worker's end of the forkserver's "alive" pipe, so the forkserver, and with it
    every worker it forked, dies with the owner.

    A forkserver exits when the last copy of that pipe's write end is closed, and multiprocessing
    hands a copy to every process the forkserver forks (for processes they would start): workers
    would keep their forkserver alive, and it them, long after the owner is gone. Workers start no
    processes. (With fork, the copy is of the owner's own forkserver, if it runs one.)
    """
    import sys

    server: Any = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None


def _owned_by(parent: int, owner: int) -> bool:
    """The worker's parent is the pool's owner (fork, spawn) or the owner's forkserver."""
    if parent == owner:
        return True
    grandparent = _parent_of(parent)
    return grandparent == owner if grandparent is not None else _alive(owner)


def _parent_of(pid: int) -> int | None:
    """The parent of `pid` from /proc (Linux), or None where there is no /proc to ask."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1 if os.path.isdir("/proc/self") else None  # gone, or no /proc here


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or the number now belongs to someone else's process
        return False
    return True
