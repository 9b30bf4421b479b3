"""The detectors: private keys by their formats, plaintext secrets by detect-secrets (with a filter
for sealer's own public material), in one process or shared out to workers."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

from .._format.token import find_tokens, is_token

CHUNK = 1024 * 1024
_OVERLAP = 16 * 1024  # a key split across two chunks is still seen whole
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


# --- private keys ----------------------------------------------------------------------------------


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


def keys_in_chunks(head: bytes, f: IO[bytes], name: str) -> list[Finding]:
    """Private keys in `head` and the rest of `f`, read a chunk at a time."""
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


# --- plaintext secrets (detect-secrets) ------------------------------------------------------------

_PUBLIC = re.compile(
    r"(?:age1pq1|age1|sealer-signer1)[02-9ac-hj-np-z]{20,}|AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]*|ssh-ed25519"
)
_SIG_LINE = re.compile(r"\s*sig:\s*[\"']?[A-Za-z0-9_-]{86}[\"']?\s*")
_KID_LINE = re.compile(r"\s*-?\s*(?:kid|key):\s*[\"']?[0-9a-f]{16}[\"']?\s*")


def not_a_secret(secret: str, line: str) -> bool:
    """detect-secrets filter: True for sealer's own public material, which looks random but is not
    secret: tokens, recipients and signer public keys, key ids, signatures."""
    if is_token(secret) or any(secret in line[s:e] for s, e, _ in find_tokens(line)):
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
        settings.filters[f"{__name__}.{not_a_secret.__name__}"] = {}  # detect-secrets imports it by name
        get_filters.cache_clear()

        def scan(path: str) -> list[tuple[int, str]]:
            return sorted({(s.line_number, s.type) for s in scan_file(path)})

        yield scan


PARALLEL_FROM = 32  # files; below this, worker start-up costs more than it saves

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


def detect_plaintext(paths: list[str], workers: int | None) -> list[list[tuple[int, str]]]:
    """(line, what) of the possible plaintext secrets in each file, in order. detect-secrets is slow
    (about 6,000 lines a second), so many files are shared out to worker processes."""
    if not paths:
        return []
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        with _plaintext_detector() as detector:
            return [detector(p) for p in paths]
    from .._pool import worker_pool

    chunk = max(1, min(32, len(paths) // (workers * 4)))
    with worker_pool(min(workers, len(paths)), _init_detector, start="fork") as pool:
        return list(pool.map(_detect_one, paths, chunksize=chunk))
