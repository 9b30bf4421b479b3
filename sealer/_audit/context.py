"""What the CLI looks up itself to fill an event's names: the commit and the key ids.

An event names the commit checked out and the key ids a file is sealed to; reading them with
gitpython or a YAML parser would cost more than the command being recorded, so `git_head` reads
`.git` directly and `kids_in` scans the sealed tokens in a file's text.
"""

from __future__ import annotations

import re
from pathlib import Path

from .._format.token import find_tokens


def kids_in(text: str) -> tuple[str, ...]:
    """The key ids named by the sealed tokens in `text`, sorted, without parsing YAML."""
    kids: set[str] = set()
    for _start, _end, kid_list in find_tokens(text):
        kids.update(kid_list.split("+"))
    return tuple(sorted(kids))


def git_head(start: Path) -> str | None:
    """The commit checked out in the git repository around `start`, read from `.git` directly.

    The CLI records it with each event; importing gitpython for that would cost more than the
    command itself. Returns None outside a repository or on anything unexpected.
    """
    try:
        p = start.resolve()
        for d in (p, *p.parents):
            dotgit = d / ".git"
            if dotgit.is_dir():
                gitdir = dotgit
                break
            if dotgit.is_file():
                text = dotgit.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                gitdir = (d / text.removeprefix("gitdir:").strip()).resolve()
                break
        else:
            return None
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head) else None
        ref = head.removeprefix("ref:").strip()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except (OSError, UnicodeDecodeError):
        return None
    return None  # an unborn branch: no commit yet
