"""The git side: a bare mirror of the followed branch inside the state dir.

The mirror is opened with gitpython; `git fetch` runs as a child in its own process group, under a
time limit and a cancel event (SIGTERM), and the whole group is killed when either ends it, so a
hanging remote (and its ssh or https helper) never outlives the sync. Reading a commit's tree and
blobs goes straight to git's object database (`ls-tree`, one `cat-file --batch` read blob by blob),
so sealed files are never checked out: no symlink in the repository can be followed, nothing lands
on disk, each blob is read once, straight from the pipe, only when it is wanted, and 1,000 files
cost two processes. A local path is fetched like a URL (into the mirror), so the controller never
reads a working tree that someone may be editing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FetchCancelled, FetchError, RollbackRefused, UnsafePath

FETCHED_REF = "refs/sealer/head"
APPLIED_REF = "refs/sealer/applied"  # keeps the applied commit reachable: gc never prunes it
_POLL = 0.05  # seconds between looks at a running fetch's cancel event
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

    def _git(self) -> str:
        import git

        return str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git")

    def fetch(self, cancel: threading.Event | None = None) -> str:
        """Fetch the branch (force: a rewritten history is fetched, then judged); return its head.

        The fetch is killed (its whole process group) after `timeout` seconds, or as soon as
        `cancel` is set: a hanging remote neither blocks a sync for long nor delays a SIGTERM."""
        import git

        repo = self._open()
        refspec = f"+refs/heads/{self.branch}:{FETCHED_REF}"
        args = [self._git(), f"--git-dir={self.path}", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
        code, stderr = self._fetch_process([*args, "--", self.url, refspec], cancel)
        if code != 0:
            lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines()]
            lines = [ln for ln in lines if ln]
            fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
            detail = redact((fatal or lines)[0]) if lines else f"exit status {code}"
            raise FetchError(
                f"cannot fetch branch {self.branch} from {redact(self.url)}: {detail}",
                hint="the last good output stays in place; check the URL, the branch and the credentials",
            )
        try:
            return str(repo.rev_parse(FETCHED_REF).hexsha)
        except (git.BadName, ValueError, OSError) as e:
            raise FetchError(f"cannot read the fetched branch {self.branch}: {type(e).__name__}") from None

    def _fetch_process(self, args: list[str], cancel: threading.Event | None) -> tuple[int, bytes]:
        """Run `git fetch` in a process group of its own; (exit status, stderr)."""
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self._git_env(),
                start_new_session=True,  # its own group: killing it takes ssh/https helpers along
            )
        except OSError as e:
            raise FetchError(f"cannot run git: {e.strerror}") from None
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    _, stderr = proc.communicate(timeout=_POLL)
                    return proc.returncode, stderr
                except subprocess.TimeoutExpired:
                    pass
                if cancel is not None and cancel.is_set():
                    raise FetchCancelled(f"fetch of branch {self.branch} cancelled: the controller is stopping")
                if time.monotonic() >= deadline:
                    raise FetchError(
                        f"cannot fetch branch {self.branch} from {redact(self.url)}: "
                        f"no answer within {self.timeout:g} s (--fetch-timeout)",
                        hint="the last good output stays in place; the fetch is retried with backoff",
                    )
        finally:
            if proc.returncode is None:
                _kill_group(proc)
                with contextlib.suppress(OSError):  # a ref lock a killed fetch may leave behind
                    os.unlink(self.path / f"{FETCHED_REF}.lock")

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
        proc = subprocess.run(
            [self._git(), f"--git-dir={self.path}", *args],
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

    @contextlib.contextmanager
    def blobs(self) -> Iterator[BlobReader]:
        """A reader of blobs, one `git cat-file --batch` for its lifetime."""
        reader = BlobReader(
            [self._git(), f"--git-dir={self.path}", "cat-file", "--batch"], self._git_env(), self.timeout
        )
        try:
            yield reader
        finally:
            reader.close()


class BlobReader:
    """Blobs read one at a time from a `git cat-file --batch` child: each is asked for when it is
    wanted and read once, straight from the pipe into its own bytes (never the whole commit in one
    buffer, then copied out). A blob larger than the caller's limit is refused from its header,
    before any of its content is read. The child is killed if it makes no progress for `timeout`
    seconds."""

    def __init__(self, args: list[str], env: dict[str, str], timeout: float) -> None:
        self._args = args
        self._env = env
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._reading_until: float | None = None  # the deadline of the read under way
        self._timed_out = False
        self._closed = threading.Event()  # ends the watch of the running child

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            try:
                self._proc = subprocess.Popen(
                    self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env
                )
            except OSError as e:
                raise FetchError(f"cannot run git cat-file: {e.strerror}") from None
            self._closed = threading.Event()
            watch = threading.Thread(
                target=self._watch, args=(self._proc, self._closed), name="sealer-cat-file", daemon=True
            )
            watch.start()
        return self._proc

    def _watch(self, proc: subprocess.Popen[bytes], closed: threading.Event) -> None:
        while not closed.wait(min(1.0, self._timeout)):
            until = self._reading_until
            if until is not None and time.monotonic() > until:
                self._timed_out = True
                proc.kill()  # the blocked read then sees the end of the pipe
                return

    def read(self, oid: str, *, limit: int, name: str) -> bytes:
        """The blob's bytes; `name` (its repository path) names it in errors."""
        if not _SHA.fullmatch(oid):
            raise FetchError(f"not a blob id: {oid!r}")
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        self._reading_until = time.monotonic() + self._timeout
        try:
            return self._read(proc, oid, limit, name)
        finally:
            self._reading_until = None

    def _read(self, proc: subprocess.Popen[bytes], oid: str, limit: int, name: str) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(oid.encode() + b"\n")
            proc.stdin.flush()  # cat-file answers each line as it comes (no --buffer)
            header = proc.stdout.readline().split()
        except OSError:
            header = []
        if len(header) != 3 or header[0].decode() != oid or header[1] != b"blob" or not header[2].isdigit():
            self.close()
            raise self._broken(f"git cat-file returned something other than blob {oid[:12]} ({name})")
        size = int(header[2])
        if size > limit:
            self.close()  # its content is never read
            raise UnsafePath(f"is {size} bytes, over the {limit} byte limit for a sealed file", file=name)
        data = proc.stdout.read(size)  # one allocation, filled straight from the pipe
        if len(data) != size or proc.stdout.read(1) != b"\n":
            self.close()
            raise self._broken(f"git cat-file stopped in the middle of blob {oid[:12]} ({name})")
        return data

    def _broken(self, message: str) -> FetchError:
        if self._timed_out:
            return FetchError(f"git cat-file did not answer within {self._timeout:g} s in the mirror")
        return FetchError(message)

    def close(self) -> None:
        self._closed.set()
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=5)
