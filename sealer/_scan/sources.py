"""What to scan: files and directories named, every file git sees in the working tree, or the
staged blobs of the index (through gitpython, imported only then)."""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import UsageError
from .detectors import CHUNK

if TYPE_CHECKING:
    from .._config import Config
    from .scan import ScanReport


@dataclass
class Item:
    """One file to scan: its name for messages, where it sits relative to the sealer root (for the
    path rules), its size, and how to open its bytes (a working-tree file or a staged blob)."""

    name: str
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]
    repo_rel: str | None = None  # relative to the .sealer.yaml root; None outside it
    path: Path | None = None  # the file itself, when it is one (not a staged blob)


def path_items(paths: Sequence[Path], cfg: Config | None, report: ScanReport) -> Iterator[Item]:
    """Files named, and every file below directories named (never into .git, never through links)."""
    from .._repository import list_tree

    for p in paths:
        if p.is_symlink():
            report.skipped.append((str(p), "a symbolic link: not followed"))
            continue
        if not p.exists():
            raise UsageError("no such file or directory", file=str(p))
        base = p if p.is_dir() else p.parent
        for f in (base / e.rel for e in list_tree(base, p) if e.kind == "file"):
            name = f.as_posix() if f != p else str(p)
            if _excluded(cfg, f):
                continue
            st = f.lstat()
            if not stat.S_ISREG(st.st_mode):
                report.skipped.append((name, "not a regular file"))
                continue
            yield _file_item(f, name, cfg)


def all_items(start: Path, cfg: Config | None, report: ScanReport) -> tuple[Iterator[Item], Path]:
    """Every file git would see in the working tree: tracked files and untracked ones not ignored."""
    repo, top = _git_repo(start)
    names = [n for n in repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard").split("\0") if n]

    def items() -> Iterator[Item]:
        for name in sorted(set(names)):
            f = top / name
            if not os.path.lexists(f) or _excluded(cfg, f):
                continue  # deleted in the working tree, or excluded
            if _regular(f.lstat().st_mode, name, report):
                yield _file_item(f, name, cfg)

    return items(), Path(repo.git_dir)


def staged_items(start: Path, cfg: Config | None, report: ScanReport) -> tuple[Iterator[Item], Path]:
    """The staged content of every file added, copied, modified, renamed or retyped in the index
    (what `git commit` will record). Read through git itself, so a temporary index that
    `git commit -a` or `git commit FILE` sets up through GIT_INDEX_FILE is honoured."""
    repo, top = _git_repo(start)
    changed = [
        n
        for n in repo.git.diff("--cached", "--name-only", "-z", "--diff-filter=ACMRT", "--no-renames").split("\0")
        if n
    ]
    if not changed:
        return iter(()), Path(repo.git_dir)
    entries: dict[str, tuple[int, str]] = {}
    wanted = set(changed)
    for record in repo.git.ls_files("-s", "-z").split("\0"):  # no pathspecs: names are not globs
        if not record:
            continue
        meta, name = record.split("\t", 1)
        mode, sha, stage = meta.split()
        if stage == "0" and name in wanted:
            entries[name] = (int(mode, 8), sha)

    def items() -> Iterator[Item]:
        for name in changed:
            if name not in entries or _excluded(cfg, top / name):
                continue
            mode, sha = entries[name]
            if _regular(mode, name, report):
                binsha = bytes.fromhex(sha)
                size = repo.odb.info(binsha).size
                yield Item(name, size, functools.partial(_blob, repo, binsha), _repo_rel(cfg, top / name))

    return items(), Path(repo.git_dir)


def _file_item(path: Path, name: str, cfg: Config | None) -> Item:
    return Item(name, path.stat().st_size, lambda: open(path, "rb"), _repo_rel(cfg, path), path)


def _repo_rel(cfg: Config | None, path: Path) -> str | None:
    if cfg is None:
        return None
    try:
        return path.resolve().relative_to(cfg.root.resolve()).as_posix()
    except ValueError:
        return None


def _excluded(cfg: Config | None, f: Path) -> bool:
    from .._check import glob_matches

    rel = _repo_rel(cfg, f)
    return rel is not None and cfg is not None and glob_matches(cfg.scan_exclude, rel)


def _regular(mode: int, name: str, report: ScanReport) -> bool:
    """Is this entry git sees a regular file? Symbolic links and submodules are noted as skipped."""
    if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
        report.skipped.append((name, "not a regular file (a symbolic link or a submodule)"))
        return False
    return True


def _git_repo(start: Path) -> tuple[Any, Path]:
    """The repository around `start`, and the top of its working tree."""
    import git

    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(
            "not inside a git repository", file=str(start), hint="scan paths instead: sealer scan PATH…"
        ) from None
    return repo, Path(repo.working_tree_dir or start)


@contextlib.contextmanager
def _blob(repo: Any, binsha: bytes) -> Iterator[IO[bytes]]:
    stream = repo.odb.stream(binsha)
    try:
        yield stream
    finally:
        while stream.read(CHUNK):  # drain: git's cat-file process must be in step for the next blob
            pass
