"""Reading input safely and writing files atomically.

Every write goes to a temp file in the target's directory, is fsynced, then renamed over the target,
so a crash leaves the old file or the new one, never a torn one. Temp files get the target's mode
(0600 for new files that may hold secrets), so plaintext is never briefly world-readable.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import IdentityError, InputError, Refused, SealerError

MAX_FILE_BYTES = 8 * 1024 * 1024


def read_text(path: str | os.PathLike[str], *, limit: int = MAX_FILE_BYTES) -> str:
    """Read a UTF-8 file with a size cap; every failure is an InputError naming the file."""
    return decode_text(read_bytes(path, limit=limit), os.fspath(path), limit=limit)


def read_bytes(path: str | os.PathLike[str], *, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a file with a size cap; every failure is an InputError naming the file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise InputError("no such file", file=p) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", file=p) from None
    except PermissionError:
        raise InputError("permission denied", file=p, hint="check the file's owner and mode") from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=p) from None
    _check_size(data, p, limit)
    return data


def decode_text(data: bytes, source: str, *, limit: int = MAX_FILE_BYTES) -> str:
    _check_size(data, source, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"not UTF-8 text (bad byte at offset {e.start})",
            file=source,
            hint="sealer reads UTF-8 text: save the file as UTF-8 (iconv -t UTF-8), or restore it from git",
        ) from None


def _check_size(data: bytes, source: str, limit: int) -> None:
    if len(data) > limit:
        raise InputError(f"larger than the {limit // (1024 * 1024)} MiB limit", file=source)


def atomic_write(path: str | Path, data: bytes, *, mode: int | None = None, sync_dir: bool = True) -> None:
    """Replace `path` with `data` atomically. Keeps an existing file's mode unless `mode` is given.

    `sync_dir=False` skips the directory fsync that makes the rename itself durable: a batch writer
    (reseal) fsyncs each directory once at the end instead; a crash before that leaves each file
    old or new, never torn, and both are valid states for a resumable job.
    """
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except FileNotFoundError:
            mode = 0o644
    # O_EXCL with a random name, created with the final mode: never briefly readable by others.
    tmp = directory / f".{p.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileNotFoundError:
        raise InputError("cannot write: its directory does not exist", file=str(p), hint="create it first") from None
    except NotADirectoryError:
        raise InputError("cannot write: a part of its path is not a directory", file=str(p)) from None
    except PermissionError:
        raise InputError("cannot write: permission denied", file=str(p)) from None
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Exclusive advisory lock on a file that writers replace by rename.

    Lock the file, then check the name still points at the locked inode: if a writer swapped it
    meanwhile, lock again. Cooperating writers (seal, set, reseal) so never lose each other's update.
    """
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield  # nothing to protect yet; a new file is created by an atomic rename
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def read_private_file(path: str | Path, *, what: str, limit: int, unsafe: type[SealerError] = IdentityError) -> bytes:
    """A file holding a private key or a passphrase: refused when group or others may read it (as
    ssh refuses), when it is not a regular file (opening a FIFO must not hang), or over `limit`."""
    import shlex

    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{what} not found", file=name) from None
    except OSError as err:
        raise InputError(f"cannot read {what}: {err.strerror}", file=name) from None
    try:
        st = os.fstat(fd)  # the open file, not the path: the checked file is the file we read
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} is not a regular file", file=name)
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise unsafe(
                f"{what} {name} is readable by group or others (mode {mode:04o}); run: chmod 600 {shlex.quote(name)}"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise InputError(f"cannot read {what}: {err.strerror}", file=name) from None
    finally:
        os.close(fd)
    if size > limit:
        size_text = f"{limit // (1 << 20)} MiB" if limit >= 1 << 20 else f"{limit} bytes"
        raise InputError(f"{what} is larger than {size_text}", file=name)
    return b"".join(chunks)


def refuse_inside(path: Path, root: Path | None, *, force: bool) -> None:
    """Private keys are written outside the repository: a committed key is a leaked key."""

    if root is not None and not force and path.resolve().is_relative_to(root.resolve()):
        raise Refused(
            f"refusing to write a private key inside the repository ({path})",
            hint="choose --out outside it, or pass --force if you really mean it",
        )
