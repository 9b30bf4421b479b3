"""Running the detectors over the files to scan, and the report they make."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .detectors import Finding, detect_plaintext, find_keys, keys_in_chunks

if TYPE_CHECKING:
    from .._config import Config
    from .sources import Item

MAX_TEXT_BYTES = 8 * 1024 * 1024  # larger files are searched for private keys only
_BINARY_SNIFF = 8192


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


def scan_items(
    items: Iterable[Item], cfg: Config | None, *, tmp_dir: Path | None = None, workers: int | None = None
) -> ScanReport:
    """Scan every item. Blobs without a file on disk (staged content) are written to a private
    temporary directory under `tmp_dir` (the git directory: the blobs are already stored there) for
    detect-secrets, which reads files, and removed when the scan ends."""
    report = ScanReport()
    per_file: list[tuple[str, list[Finding]]] = []
    jobs: list[tuple[int, str]] = []  # (index in per_file, path on disk) for detect-secrets
    with contextlib.ExitStack() as stack:
        scratch: Path | None = None
        for item in items:
            report.files += 1
            text, why, findings = _read(item)
            per_file.append((item.name, findings))
            if text is None:
                report.partial.append((item.name, why))
                continue
            findings += find_keys(text, item.name)
            if cfg is not None and item.repo_rel is not None:
                from .._check import leaks

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
                    f.write(text.encode("utf-8"))  # the blob's bytes: it decoded as UTF-8
            jobs.append((len(per_file) - 1, str(on_disk)))
        hits = detect_plaintext([path for _i, path in jobs], workers)
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


def _read(item: Item) -> tuple[str | None, str, list[Finding]]:
    """(the item's text, "", []) when it is UTF-8 text of reasonable size. Otherwise it is searched
    for private keys only (in chunks when large): (None, why, what was found)."""
    with item.open() as f:
        small = item.size <= MAX_TEXT_BYTES
        head = f.read(MAX_TEXT_BYTES + 1) if small else b""
        if small and len(head) <= MAX_TEXT_BYTES:
            if b"\0" in head[:_BINARY_SNIFF]:
                why = "binary file"
            else:
                try:
                    return head.decode("utf-8"), "", []
                except UnicodeDecodeError:
                    why = "not UTF-8 text"
            return None, f"{why}: searched for private keys only", find_keys(head.decode("latin-1"), item.name)
        found = keys_in_chunks(head, f, item.name)  # larger than it said it was, or than text may be
    return None, f"larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB: searched for private keys only", found
