"""`sealer scan`: plaintext secrets and private keys in what is about to be committed (or any files).

Three detectors, each reporting `FILE:LINE: what` and never the secret itself:

- private keys, by their formats: age identities (`AGE-SECRET-KEY-1…`, the post-quantum
  `AGE-SECRET-KEY-PQ-1…`), sealer signer keys, PEM private keys, OpenSSH and PGP private keys;
- plaintext secrets, by detect-secrets (keywords like `password:`, cloud and SaaS token formats,
  credentials in URLs), with a filter so that sealer's own public material (tokens, recipients,
  key ids, signatures) is never reported;
- files under an environment's path rules holding unsealed values (the part of `sealer check` that
  needs no registry: `sealer._check.leaks`).

Binary, non-UTF-8 and huge files are not parsed: they are searched for private keys only (in
chunks, so size costs no memory) and reported as such. `--staged` reads the blobs of the index
through gitpython, so what is checked is what will be committed, not the working tree.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from ._config import Config

MAX_TEXT_BYTES = 8 * 1024 * 1024  # larger files are searched for private keys only
CHUNK = 1024 * 1024
_OVERLAP = 16 * 1024  # a key split across two chunks is still seen whole
_BINARY_SNIFF = 8192
ALLOW_PRAGMA = "pragma: allowlist secret"  # detect-secrets' inline allowlist, honoured by every detector

_B32 = "[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7Lqpzry9x8gf2tvdw0s3jn54khce6mua7l]"
_B64_LINE = r"[A-Za-z0-9+/=]{20,}"
_NL = r"(?:\r?\n|\\n)"  # a real line break, or one escaped inside a JSON/YAML string
KEY_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "age-identity",
        re.compile(rf"AGE-SECRET-KEY-PQ-1{_B32}{{40,}}", re.I),
        "a post-quantum age private key (AGE-SECRET-KEY-PQ-1…)",
    ),
    ("age-identity", re.compile(rf"AGE-SECRET-KEY-1{_B32}{{40,}}", re.I), "an age private key (AGE-SECRET-KEY-1…)"),
    (
        "signer-key",
        re.compile(rf"SEALER-SIGNER-SECRET-KEY-1{_B32}{{40,}}", re.I),
        "a sealer signer private key (SEALER-SIGNER-SECRET-KEY-1…)",
    ),
    (
        "openssh-private-key",
        re.compile(rf"-----BEGIN OPENSSH (?:PRIVATE) KEY-----[ \t]*{_NL}[ \t]*{_B64_LINE}"),
        "an OpenSSH private key",
    ),
    (
        "pem-private-key",
        re.compile(
            rf"-----BEGIN (?:(?:RSA|DSA|EC|ENCRYPTED|ANY) )?PRIVATE KEY-----[ \t]*{_NL}"
            rf"(?:[ \t]*[A-Za-z-]+:[^\n]*{_NL}|[ \t]*{_NL})*[ \t]*{_B64_LINE}"
        ),
        "a PEM private key",
    ),
    (
        "pgp-private-key",
        re.compile(rf"-----BEGIN PGP PRIVATE KEY BLOCK-----[ \t]*{_NL}"),
        "a PGP private key block",
    ),
)


@dataclass
class Finding:
    file: str
    line: int | None
    kind: str  # a KEY_PATTERNS kind, "plaintext-secret", or a `sealer check` problem code
    message: str
    path: str | None = None  # the value's path, for unsealed values under an environment

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "path": self.path, "message": self.message}


@dataclass
class ScanReport:
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    partial: list[tuple[str, str]] = field(default_factory=list)  # (file, why only keys were searched)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why not scanned at all)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "files": self.files,
            "findings": [f.to_dict() for f in self.findings],
            "keys_only": [{"file": f, "reason": r} for f, r in self.partial],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
        }


@dataclass
class Item:
    """One file to scan: its name for messages, where it sits relative to the sealer root (for the
    path rules), its size, and how to open its bytes (a working-tree file or a staged blob)."""

    name: str
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]
    repo_rel: str | None = None  # relative to the .sealer.yaml root; None outside it
    path: Path | None = None  # the file itself, when it is one (not a staged blob)


# --- detectors -------------------------------------------------------------------------------------


def find_keys(text: str, name: str, *, line_offset: int = 0) -> list[Finding]:
    """Private keys in `text` (any decoding: the key formats are ASCII)."""
    out = []
    taken: list[tuple[int, int]] = []
    for kind, rx, what in KEY_PATTERNS:
        for m in rx.finditer(text):
            if any(s <= m.start() < e for s, e in taken):
                continue  # the PQ pattern already claimed this one
            taken.append((m.start(), m.end()))
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.start())
            if ALLOW_PRAGMA in text[start : end if end >= 0 else len(text)]:
                continue
            line = line_offset + text.count("\n", 0, m.start()) + 1
            out.append(Finding(name, line, kind, f"{what}: never commit a private key"))
    return out


_TOKEN = re.compile(r"ENC\[sealer\.[^\]\s]*\]")
_PUBLIC = re.compile(
    r"(?:age1pq1|age1|sealer-signer1)[02-9ac-hj-np-z]{20,}|AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]*|ssh-ed25519"
)
_SIG_LINE = re.compile(r"\s*sig:\s*[\"']?[A-Za-z0-9_-]{86}[\"']?\s*")
_KID_LINE = re.compile(r"\s*-?\s*(?:kid|key):\s*[\"']?[0-9a-f]{16}[\"']?\s*")


def not_a_secret(secret: str, line: str) -> bool:
    """detect-secrets filter: True for sealer's own public material, which looks random but is not
    secret: tokens, recipients and signer public keys, key ids, signatures."""
    if secret.startswith("ENC[sealer.") or any(secret in m.group() for m in _TOKEN.finditer(line)):
        return True
    if any(secret in m.group() for m in _PUBLIC.finditer(line)):
        return True
    return bool(_SIG_LINE.fullmatch(line) or _KID_LINE.fullmatch(line))


@contextlib.contextmanager
def _plaintext_detector() -> Iterator[Callable[[str], list[tuple[int, str]]]]:
    """detect-secrets with every plugin but the ones we replace or that are noise here (its private
    key plugin: ours names the format; public IPs: not secrets), plus the sealer filter."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings, get_filters

    with default_settings() as settings:
        settings.disable_plugins("PrivateKeyDetector", "IPPublicDetector")
        settings.filters[f"{__name__}.not_a_secret"] = {}
        get_filters.cache_clear()

        def scan(path: str) -> list[tuple[int, str]]:
            return sorted({(s.line_number, s.type) for s in scan_file(path)})

        yield scan


# --- scanning --------------------------------------------------------------------------------------


PARALLEL_FROM = 32  # files; below this, worker start-up costs more than it saves


def scan_items(
    items: Iterable[Item], cfg: Config | None, *, tmp_dir: Path | None = None, workers: int | None = None
) -> ScanReport:
    """Scan every item. Blobs without a file on disk (staged content) are written to a private
    temporary directory under `tmp_dir` (the git directory: the blobs are already stored there) for
    detect-secrets, which reads files, and removed when the scan ends. detect-secrets is slow (about
    6,000 lines a second), so many files are shared out to worker processes."""
    report = ScanReport()
    per_file: list[tuple[str, list[Finding]]] = []
    jobs: list[tuple[int, str]] = []  # (index in per_file, path on disk) for detect-secrets
    with contextlib.ExitStack() as stack:
        scratch: Path | None = None
        for item in items:
            report.files += 1
            data, why, findings = _read(item)
            per_file.append((item.name, findings))
            if data is None:
                report.partial.append((item.name, why))
                continue
            text = data.decode("utf-8")
            findings += find_keys(text, item.name)
            if cfg is not None and item.repo_rel is not None:
                from ._check import leaks

                for p in leaks(cfg, item.repo_rel, text):
                    findings.append(Finding(item.name, p.line, p.code, p.message, p.path))
            on_disk = item.path
            if on_disk is None:
                if scratch is None:
                    scratch = Path(tempfile.mkdtemp(prefix="sealer-scan-", dir=tmp_dir))
                    stack.callback(shutil.rmtree, scratch, True)
                on_disk = scratch / item.name
                on_disk.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(on_disk, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            jobs.append((len(per_file) - 1, str(on_disk)))
        hits = _detect([path for _i, path in jobs], workers)
    for (i, _path), found in zip(jobs, hits, strict=True):
        name, findings = per_file[i]
        flagged = {f.line for f in findings}
        for line, kind in found:
            if line not in flagged:  # one finding per line: an unsealed value is not reported twice
                flagged.add(line)
                findings.append(Finding(name, line, "plaintext-secret", f"possible plaintext secret ({kind})"))
    for _name, findings in per_file:
        report.findings += sorted(findings, key=lambda f: (f.line or 0, f.kind))
    return report


_DETECTOR: Callable[[str], list[tuple[int, str]]] | None = None
_DETECTOR_SETUP: AbstractContextManager[Callable[[str], list[tuple[int, str]]]] | None = None


def _init_detector() -> None:
    """In a worker: set detect-secrets up once, for the life of the process (the context manager
    is kept referenced: collecting it would restore detect-secrets' empty settings)."""
    global _DETECTOR, _DETECTOR_SETUP
    _DETECTOR_SETUP = _plaintext_detector()
    _DETECTOR = _DETECTOR_SETUP.__enter__()


def _detect_one(path: str) -> list[tuple[int, str]]:
    assert _DETECTOR is not None
    return _DETECTOR(path)


def _detect(paths: list[str], workers: int | None) -> list[list[tuple[int, str]]]:
    if not paths:
        return []
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        with _plaintext_detector() as detector:
            return [detector(p) for p in paths]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    chunk = max(1, min(32, len(paths) // (workers * 4)))
    with ProcessPoolExecutor(min(workers, len(paths)), mp_context=ctx, initializer=_init_detector) as pool:
        return list(pool.map(_detect_one, paths, chunksize=chunk))


def _read(item: Item) -> tuple[bytes | None, str, list[Finding]]:
    """The item's bytes when it is UTF-8 text of reasonable size. Otherwise it is searched for
    private keys only (in chunks when large): (None, why, what was found)."""
    with item.open() as f:
        if item.size <= MAX_TEXT_BYTES:
            data = f.read(MAX_TEXT_BYTES + 1)
            if len(data) <= MAX_TEXT_BYTES:
                if b"\0" in data[:_BINARY_SNIFF]:
                    return (
                        None,
                        "binary file: searched for private keys only",
                        find_keys(data.decode("latin-1"), item.name),
                    )
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    return (
                        None,
                        "not UTF-8 text: searched for private keys only",
                        find_keys(data.decode("latin-1"), item.name),
                    )
                return data, "", []
            head = data
        else:
            head = b""
        found = _keys_in_chunks(head, f, item.name)
    return None, f"larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB: searched for private keys only", found


def _keys_in_chunks(head: bytes, f: IO[bytes], name: str) -> list[Finding]:
    out: list[Finding] = []
    carry = ""
    lines_before = 0  # line breaks before the start of `carry`
    seen: set[int | None] = set()
    chunk = head or f.read(CHUNK)
    while chunk:
        text = carry + chunk.decode("latin-1")
        for finding in find_keys(text, name, line_offset=lines_before):
            if finding.line not in seen:  # a key in the overlap is found twice
                seen.add(finding.line)
                out.append(finding)
        keep = text[-_OVERLAP:]
        lines_before += text.count("\n", 0, len(text) - len(keep))
        carry = keep
        chunk = f.read(CHUNK)
    return out


# --- what to scan ----------------------------------------------------------------------------------


def _file_item(path: Path, name: str, cfg: Config | None) -> Item:
    return Item(name, path.stat().st_size, lambda: open(path, "rb"), _repo_rel(cfg, path), path)


def _repo_rel(cfg: Config | None, path: Path) -> str | None:
    if cfg is None:
        return None
    try:
        return path.resolve().relative_to(cfg.root.resolve()).as_posix()
    except ValueError:
        return None


def path_items(paths: Sequence[Path], cfg: Config | None, report: ScanReport) -> Iterator[Item]:
    """Files named, and every file below directories named (never into .git, never through links)."""
    from ._check import _walk

    for p in paths:
        if p.is_symlink():
            report.skipped.append((str(p), "a symbolic link: not followed"))
            continue
        if not p.exists():
            raise UsageError("no such file or directory", file=str(p))
        for f in _walk(p):
            name = f.as_posix() if f != p else str(p)
            if _excluded(cfg, f):
                continue
            st = f.lstat()
            if not stat.S_ISREG(st.st_mode):
                report.skipped.append((name, "not a regular file"))
                continue
            yield _file_item(f, name, cfg)


def _excluded(cfg: Config | None, f: Path, extra: Sequence[str] = ()) -> bool:
    from ._check import glob_matches

    rel = _repo_rel(cfg, f)
    return rel is not None and cfg is not None and glob_matches((*cfg.scan_exclude, *extra), rel)


def _git_repo(start: Path) -> Any:
    import git

    try:
        return git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(
            "not inside a git repository", file=str(start), hint="scan paths instead: sealer scan PATH…"
        ) from None


def all_items(start: Path, cfg: Config | None, report: ScanReport) -> tuple[Iterator[Item], Path]:
    """Every file git would see in the working tree: tracked files and untracked ones not ignored."""
    repo = _git_repo(start)
    top = Path(repo.working_tree_dir or start)
    names = [n for n in repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard").split("\0") if n]

    def items() -> Iterator[Item]:
        for name in sorted(set(names)):
            f = top / name
            if not os.path.lexists(f) or _excluded(cfg, f):
                continue  # deleted in the working tree, or excluded
            st = f.lstat()
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                report.skipped.append((name, "not a regular file (a symbolic link or a submodule)"))
                continue
            yield _file_item(f, name, cfg)

    return items(), Path(repo.git_dir)


def staged_items(start: Path, cfg: Config | None, report: ScanReport) -> tuple[Iterator[Item], Path]:
    """The staged content of every file added, copied, modified, renamed or retyped in the index
    (what `git commit` will record). Read through git itself, so a temporary index that
    `git commit -a` or `git commit FILE` sets up through GIT_INDEX_FILE is honoured."""
    repo = _git_repo(start)
    top = Path(repo.working_tree_dir or start)
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
            if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
                report.skipped.append((name, "not a regular file (a symbolic link or a submodule)"))
                continue
            binsha = bytes.fromhex(sha)
            size = repo.odb.info(binsha).size
            yield Item(name, size, functools.partial(_blob, repo, binsha), _repo_rel(cfg, top / name))

    return items(), Path(repo.git_dir)


@contextlib.contextmanager
def _blob(repo: Any, binsha: bytes) -> Iterator[IO[bytes]]:
    stream = repo.odb.stream(binsha)
    try:
        yield stream
    finally:
        while stream.read(CHUNK):  # drain: git's cat-file process must be in step for the next blob
            pass


# --- the pre-commit hook ---------------------------------------------------------------------------

HOOK_MARKER = "# sealer pre-commit hook"


def hook_text(executable: str) -> str:
    import shlex

    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER} (written by `sealer hook install`; run it again to update)\n"
        "# Refuses a commit whose staged files hold private keys, plaintext secrets, or unsealed\n"
        "# values under an environment's paths. Bypass once, knowingly: git commit --no-verify\n"
        f"exec {shlex.quote(executable)} scan --staged\n"
    )


def install_hook(start: Path, executable: str, *, force: bool = False) -> tuple[Path, bool]:
    """Write the repository's pre-commit hook (honouring core.hooksPath). Refuses to replace a hook
    sealer did not write unless `force`. Returns the hook's path and whether a foreign hook was replaced."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks/pre-commit"],
            cwd=start,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UsageError("not inside a git repository", file=str(start)) from None
    hook = (start / out).absolute()
    replaced = False
    if hook.exists() or hook.is_symlink():
        try:
            mine = HOOK_MARKER in hook.read_text(errors="replace")
        except OSError:
            mine = False
        if not mine and not force:
            raise UsageError(
                "a pre-commit hook that sealer did not write is already installed",
                file=str(hook),
                hint="add `sealer scan --staged` to it yourself, or pass --force to replace it",
            )
        replaced = not mine
    from ._fsio import atomic_write

    hook.parent.mkdir(parents=True, exist_ok=True)
    if hook.is_symlink():
        hook.unlink()
    atomic_write(hook, hook_text(executable).encode(), mode=0o755)
    return hook, replaced


def sealer_executable(argv0: str) -> str:
    """The absolute path of the running `sealer`, for the hook: git runs hooks with its own PATH,
    which may not reach the virtualenv sealer is installed in."""
    import sys

    candidates = [Path(argv0)] if argv0 else []
    which = shutil.which("sealer")
    candidates += [Path(which)] if which else []
    candidates.append(Path(sys.executable).parent / "sealer")
    for c in candidates:
        if c.name == "sealer" and c.is_file() and os.access(c, os.X_OK):
            return str(c.absolute())
    raise UsageError("cannot find the sealer executable to put in the hook", hint="run it as an installed `sealer`")
