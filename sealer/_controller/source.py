"""The git side: a bare mirror of the followed branch inside the state dir.

Fetching goes through gitpython; reading a commit's tree and blobs goes straight to git's object
database (`ls-tree`, `cat-file --batch`), so sealed files are never checked out: no symlink in the
repository can be followed, nothing lands on disk, and 1,000 files cost two processes.
A local path is fetched like a URL (into the mirror), so the controller never reads a working
tree that someone may be editing.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FetchError, RollbackRefused

FETCHED_REF = "refs/sealer/head"
APPLIED_REF = "refs/sealer/applied"  # keeps the applied commit reachable: gc never prunes it
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
# Never prompt for credentials, and keep git's messages in one language.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}


def redact(text: str) -> str:
    """A URL or git message with any `user:password@` removed."""
    return _CREDENTIALS.sub("***@", text)


def normalize_url(repo: str) -> str:
    """An existing local path becomes absolute; anything else is a URL for git."""
    p = Path(repo).expanduser()
    if "://" not in repo and not re.match(r"^[\w.-]+@[\w.-]+:", repo) and p.exists():
        return str(p.resolve())
    return repo


@dataclass(frozen=True)
class Entry:
    """One entry of a commit's tree: mode (e.g. 100644, 120000 symlink, 160000 submodule)."""

    mode: str
    kind: str  # blob | tree | commit
    oid: str
    size: int | None
    path: str


class Mirror:
    def __init__(self, path: Path, url: str, branch: str, *, timeout: float = 120.0) -> None:
        self.path = path
        self.url = url
        self.branch = branch
        self.timeout = timeout
        self._repo: Any = None

    def _git_env(self) -> dict[str, str]:
        return {**os.environ, **GIT_ENV}

    def _open(self) -> Any:
        if self._repo is None:
            import git

            if (self.path / "HEAD").exists():
                self._repo = git.Repo(self.path)
            else:
                self._repo = git.Repo.init(self.path, bare=True, mkdir=True)
                os.chmod(self.path, 0o700)
        return self._repo

    def fetch(self) -> str:
        """Fetch the branch (force: a rewritten history is fetched, then judged); return its head."""
        import git

        repo = self._open()
        refspec = f"+refs/heads/{self.branch}:{FETCHED_REF}"
        try:
            with repo.git.custom_environment(**GIT_ENV):
                repo.git.fetch(
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--",
                    self.url,
                    refspec,
                    kill_after_timeout=self.timeout,
                )
            return str(repo.rev_parse(FETCHED_REF).hexsha)
        except git.GitCommandError as e:
            lines = [ln.strip().removeprefix("stderr:").strip(" '") for ln in str(e.stderr or "").splitlines()]
            lines = [ln for ln in lines if ln]
            fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
            detail = redact((fatal or lines)[0]) if lines else f"exit status {e.status}"
            raise FetchError(
                f"cannot fetch branch {self.branch} from {redact(self.url)}: {detail}",
                hint="the last good output stays in place; check the URL, the branch and the credentials",
            ) from None
        except (git.BadName, ValueError, OSError) as e:
            raise FetchError(f"cannot read the fetched branch {self.branch}: {type(e).__name__}") from None

    def pin(self, commit: str) -> None:
        """Keep `commit` in the mirror after a force-push, so the rollback check can still see it."""
        import git

        try:
            self._open().git.update_ref(APPLIED_REF, commit)
        except git.GitCommandError as e:
            raise FetchError(f"cannot record the applied commit in the mirror (exit status {e.status})") from None

    def is_ancestor(self, ancestor: str, rev: str) -> bool:
        """Whether `ancestor` is in the history of `rev`. An unknown ancestor refuses: we cannot tell."""
        import git

        try:
            return bool(self._open().is_ancestor(ancestor, rev))
        except git.GitCommandError:
            raise RollbackRefused(
                f"the applied commit {ancestor[:12]} is not in the mirror, so {rev[:12]} cannot be "
                "shown to descend from it",
                hint="pass --allow-rollback once to accept the branch as it is",
            ) from None

    def _run(self, args: list[str], stdin: bytes | None = None) -> bytes:
        import git

        exe = git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
        proc = subprocess.run(
            [exe, f"--git-dir={self.path}", *args],
            input=stdin,
            capture_output=True,
            env=self._git_env(),
            timeout=self.timeout,
            check=False,
        )
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise FetchError(f"git {args[0]} failed in the mirror: {redact(last)}")
        return proc.stdout

    def tree(self, commit: str) -> list[Entry]:
        """Every entry of the commit's tree, recursively, with blob sizes."""
        if not _SHA.fullmatch(commit):
            raise FetchError(f"not a commit id: {commit!r}")
        out = self._run(["ls-tree", "-r", "-l", "-z", "--full-tree", commit])
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.split()
            path = raw_path.decode("utf-8", errors="surrogateescape")
            entries.append(Entry(mode.decode(), kind.decode(), oid.decode(), int(size) if size != b"-" else None, path))
        return entries

    def read_blobs(self, oids: list[str]) -> dict[str, bytes]:
        """The contents of these blobs, read in one `git cat-file --batch`."""
        if not oids:
            return {}
        unique = list(dict.fromkeys(oids))
        out = self._run(["cat-file", "--batch"], stdin="".join(o + "\n" for o in unique).encode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for oid in unique:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split()
            if len(header) != 3 or header[0].decode() != oid or header[1] != b"blob":
                raise FetchError(f"git cat-file returned something other than blob {oid[:12]}")
            size = int(header[2])
            blobs[oid] = out[nl + 1 : nl + 1 + size]
            pos = nl + 1 + size + 1
        return blobs
