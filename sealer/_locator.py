"""Every sealed token in a file, with the context it was sealed in, found fast.

Re-sealing a repository touches only tokens, so it need not build a YAML tree: for the block-style
layouts sealer writes (`key: TOKEN`, `- TOKEN`, Secrets, nested mappings and lists), a line scanner
recovers each token's path, and the document's env, scope, namespace and name. Nothing rests on the
scanner being right: every context it derives is checked against the token's hints, and the AEAD
checks it again when the value is opened. When the scanner meets anything it does not model (flow
collections, anchors, tags, multi-line scalars holding tokens), it gives up and the ruamel.yaml
reader answers instead.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import _format
from ._document import SealedFile, load
from ._format import Context
from ._format.valuepath import Path, Segment, format_path
from .errors import TokenError

_KEY = re.compile(
    r"""(?P<key>[^\s#'"&*!|>%@`{}\[\],?:-][^:#'"]*?|"(?P<dq>[^"\\]*)"|'(?P<sq>[^']*)')"""
    r"[ \t]*:(?:[ \t]+|$)"
)
_LOOKS_LIKE_KEY = re.compile(r":(?:[ \t]|$)")
_BLOCK_SCALAR = re.compile(r"[|>][0-9+-]*[ \t]*(#.*)?$")


@dataclass
class Located:
    """A token: where its text is in the file, and the context it must open in."""

    start: int
    end: int
    text: str
    ctx: Context

    @functools.cached_property
    def token(self) -> _format.Token:
        return _format.parse_token(self.text)


def locate(text: str, source: str, *, fast: bool = True) -> list[Located]:
    """All tokens of a sealed file with their contexts; the fast scanner if it can, else ruamel."""
    if not _format.mentions_tokens(text):
        return []
    found = _scan(text) if fast else None
    if found is not None and all(_hints_match(t) for t in found):
        return found
    return from_document(load(text, source), source)


def from_document(sf: SealedFile, source: str) -> list[Located]:
    out = []
    for doc, leaf in sf.all_leaves():
        if not leaf.sealed or doc.meta is None:
            continue
        start = sf.text.find(leaf.text, leaf.node.start_mark.index, leaf.node.end_mark.index)
        if start < 0:
            raise TokenError(
                f"{format_path(leaf.path)}: the token is not written as sealer writes it (escaped or folded)",
                file=source,
                hint="restore the file from git, or set the value again",
            )
        ctx = doc.context(doc.meta.env, doc.meta.scope, leaf.path)
        out.append(Located(start, start + len(leaf.text), leaf.text, ctx))
    return out


def _hints_match(t: Located) -> bool:
    try:
        return not _format.mismatches(t.token, t.ctx)
    except Exception:
        return False


class _GiveUp(Exception):
    pass


@dataclass
class _Doc:
    kind: str | None = None
    namespace: str = ""
    name: str = ""
    env: str | None = None
    scope: str | None = None
    version: str | None = None


def _scan(text: str) -> list[Located] | None:
    try:
        return list(_scan_docs(text))
    except _GiveUp:
        return None


def _scan_docs(text: str) -> list[Located]:
    out: list[Located] = []
    pending: list[tuple[int, str, Path]] = []
    doc = _Doc()
    stack: list[tuple[int, str, Segment]] = []  # (column, "key" | "item", segment)
    block_col = -1  # inside a block scalar whose key is at this column
    tokens_seen = 0
    scalar_open = False  # the last value line may continue on the next line (a multi-line scalar)
    pos = 0

    def finish() -> None:
        nonlocal pending, doc
        if pending:
            if doc.env is None or doc.scope is None or doc.version != "1":
                raise _GiveUp
            for start, tok, path in pending:
                ctx = Context(doc.env, doc.scope, doc.namespace, doc.name, path)
                out.append(Located(start, start + len(tok), tok, ctx))
        pending = []
        doc = _Doc()

    for line in text.splitlines(keepends=True):
        line_start = pos
        pos += len(line)
        body = line.rstrip("\r\n")
        tokens_seen += _format.count_mentions(body)
        stripped = body.lstrip(" ")
        col = len(body) - len(stripped)
        if block_col >= 0:
            if not stripped or col > block_col:
                continue
            block_col = -1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("\t") or (col == 0 and stripped.startswith("%")):
            raise _GiveUp
        if col == 0 and stripped.startswith(("---", "...")):
            if _value(stripped[3:].strip() or "#") is not None:
                raise _GiveUp  # content on the document marker line
            finish()
            stack = []
            continue
        rest, c = stripped, col
        dashed = False
        while rest == "-" or rest.startswith("- "):  # sequence items, possibly nested on one line
            index = 0
            while stack and stack[-1][0] > c:
                stack.pop()
            if stack and stack[-1][0] == c and stack[-1][1] == "item":
                index = int(stack.pop()[2]) + 1
            stack.append((c, "item", index))
            after = rest[1:]
            rest = after.lstrip(" ")
            c += 1 + len(after) - len(rest)
            dashed = True
        if not rest:
            continue
        m = _KEY.match(rest)
        if m:
            key = m.group("dq") if m.group("dq") is not None else m.group("sq")
            key = key if key is not None else m.group("key").rstrip()
            while stack and stack[-1][0] >= c:
                stack.pop()
            stack.append((c, "key", key))
            rest = rest[m.end() :]
            scalar_open = False
            if not rest or rest.startswith("#"):
                continue
            if _BLOCK_SCALAR.match(rest):
                block_col = c
                continue
        elif not dashed:
            # A continuation line of a multi-line scalar: harmless unless it holds a token, or is a
            # key the pattern above does not read (then every path below it would be wrong).
            if not scalar_open or _format.mentions_tokens(rest) or _LOOKS_LIKE_KEY.search(rest):
                raise _GiveUp
            if not (stack and stack[-1][0] < c):
                raise _GiveUp
            continue
        path = tuple(seg for _, _, seg in stack)
        if rest[0] in "{[" and path in (("metadata",), ("sealer",)):
            raise _GiveUp  # flow-style metadata: the context's name/namespace would be missed
        value = _value(rest)
        scalar_open = value is not None or rest[0] in "\"'"
        if value is None:
            if _format.mentions_tokens(rest):
                raise _GiveUp
            continue
        _note(doc, path, value)
        if _format.is_token(value):
            if not _format.is_well_formed(value):
                raise _GiveUp
            pending.append((line_start + body.index(value, c), value, path))
    finish()
    if len(out) != tokens_seen:
        raise _GiveUp  # a token somewhere the scanner did not place (a comment, a block scalar, ...)
    return out


def _value(rest: str) -> str | None:
    """A one-line scalar: quoted without escapes, or plain up to a comment. None for anything else."""
    if rest[0] in "{[&*!|>%@`":
        return None
    if rest[0] in "\"'":
        q = rest[0]
        end = rest.find(q, 1)
        if end < 0 or (q == '"' and "\\" in rest[1:end]) or (q == "'" and rest[end + 1 : end + 2] == "'"):
            return None
        tail = rest[end + 1 :].strip()
        return rest[1:end] if not tail or tail.startswith("#") else None
    cut = len(rest)
    for sep in (" #", "\t#"):
        i = rest.find(sep)
        if i >= 0:
            cut = min(cut, i)
    value = rest[:cut].rstrip()
    return None if rest.startswith("#") or value.endswith(":") else value


def _note(doc: _Doc, path: Path, value: str) -> None:
    """Remember the document-level facts the context needs."""
    if path == ("kind",):
        doc.kind = value
    elif path == ("metadata", "name"):
        doc.name = value
    elif path == ("metadata", "namespace"):
        doc.namespace = value
    elif path == ("sealer", "env"):
        doc.env = value
    elif path == ("sealer", "scope"):
        doc.scope = value
    elif path == ("sealer", "version"):
        doc.version = value
