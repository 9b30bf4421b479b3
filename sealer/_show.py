"""What a sealed file holds, without any key: per value its path, type, key ids, seal time and
expiry, and per document its environment, scope and signer (`sealer show`).

Everything shown is public: the token's readable header (docs/format.md § 5) and the `sealer:`
block. Nothing is opened, so nothing here says a value *would* open; `check` and `unseal` judge
that. A value whose token is malformed, or whose context hints say it was moved, is listed with
the problem instead of failing the whole view.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _format
from ._document import load
from ._format.valuepath import format_path
from ._fsio import read_text
from ._repository import span
from .errors import TokenError


@dataclass(frozen=True)
class ShownValue:
    path: str  # as `sealer set` takes it: stringData.password, data["tls.crt"]
    line: int  # 1-based line of the token in the file
    type: str | None  # str, bytes, int, float, bool, timestamp; None when the token is malformed
    kids: tuple[str, ...]
    sealed_at: int | None  # Unix seconds, from the token's header
    problem: str | None = None  # a malformed token, or hints that say it was moved
    expires_at: int | None = None  # Unix seconds, from the token's header; None: never expires

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "type": self.type,
            "kids": list(self.kids),
            "sealed_at": iso(self.sealed_at) if self.sealed_at is not None else None,
            "age_seconds": max(0, int(now - self.sealed_at)) if self.sealed_at is not None else None,
            "expires_at": iso(self.expires_at) if self.expires_at is not None else None,
            "expired": self.expires_at is not None and now >= self.expires_at,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ShownDocument:
    index: int
    kind: str | None
    namespace: str
    name: str
    env: str | None  # None: no sealer: block (nothing sealed in it yet)
    scope: str | None
    signer: str | None
    signer_key: str | None
    values: list[ShownValue] = field(default_factory=list)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "document": self.index,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "env": self.env,
            "scope": self.scope,
            "signer": self.signer,
            "signer_key": self.signer_key,
            "values": [v.to_dict(now) for v in self.values],
        }


@dataclass(frozen=True)
class Shown:
    file: str
    documents: list[ShownDocument]

    @property
    def values(self) -> int:
        return sum(len(d.values) for d in self.documents)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        t = time.time() if now is None else now
        return {"file": self.file, "documents": [d.to_dict(t) for d in self.documents]}

    def text_lines(self, now: float | None = None) -> list[str]:
        t = time.time() if now is None else now
        out = []
        for d in self.documents:
            what = " ".join(x for x in (d.kind or "document", "/".join(p for p in (d.namespace, d.name) if p)) if x)
            if d.env is None:
                out.append(f"{self.file}: document {d.index} ({what}): not sealed")
                continue
            signed = f"signed by {d.signer} (key {d.signer_key})" if d.signer else "not signed"
            out.append(f"{self.file}: document {d.index} ({what}): env {d.env}, scope {d.scope}, {signed}")
            for v in d.values:
                if v.type is None or v.sealed_at is None:
                    out.append(f"  {v.path}  line {v.line}: {v.problem}")
                    continue
                line = f"  {v.path}  {v.type}  {'+'.join(v.kids)}  sealed {iso(v.sealed_at)} ({age(t - v.sealed_at)})"
                if v.expires_at is not None:
                    left = v.expires_at - t
                    line += f"  expires {iso(v.expires_at)} ({'in ' + span(left) if left > 0 else 'EXPIRED'})"
                out.append(line + (f"  {v.problem}" if v.problem else ""))
        return out


def show_text(text: str, source: str) -> Shown:
    """The public facts of a sealed file's text. Raises only when the file is not YAML sealer reads."""
    sf = load(text, source)
    docs = []
    for doc in sf.docs:
        meta = doc.meta
        sig = meta.signature if meta is not None else None
        shown = ShownDocument(
            doc.index,
            doc.kind,
            doc.namespace,
            doc.name,
            meta.env if meta else None,
            meta.scope if meta else None,
            sig.signer if sig else None,
            sig.key if sig else None,
        )
        for leaf in doc.leaves:
            if not leaf.sealed:
                continue
            where = format_path(leaf.path)
            line = leaf.node.start_mark.line + 1
            try:
                tok = _format.parse_token(leaf.text)
            except TokenError as e:
                shown.values.append(ShownValue(where, line, None, _format.token_kids(leaf.text), None, str(e)))
                continue
            problem = None
            if meta is None:
                problem = "sealed, but the document has no sealer: block (restore the file from git)"
            else:
                moved = _format.mismatches(tok, doc.context(meta.env, meta.scope, leaf.path))
                if moved:
                    problem = f"sealed for a different {' and '.join(moved)} (moved, copied or altered)"
            vtype = _format.TYPES[tok.vtype]
            shown.values.append(ShownValue(where, line, vtype, tok.kids, tok.sealed_at, problem, tok.expires_at))
        shown.values.sort(key=lambda v: v.line)  # in file order (a Secret's sections are read data first)
        docs.append(shown)
    return Shown(source, docs)


def show_file(path: str | os.PathLike[str]) -> Shown:
    """`show_text` of a file (read with the size cap every sealed file has)."""
    name = os.fspath(path)
    return show_text(read_text(name), name)


def show(paths: Sequence[str | os.PathLike[str]]) -> list[Shown]:
    return [show_file(p) for p in paths]


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(min(ts, 253402300799), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(seconds: float) -> str:
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
