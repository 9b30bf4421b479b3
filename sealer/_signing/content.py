"""What a signature covers: a document read into the neutral tree of sealer._format.signature,
and the file's path as the signature names it (docs/format.md § 6)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._format import signature as _sig
from ..errors import InputError

if TYPE_CHECKING:
    from .._document import Document, Meta

MAX_NODES = 200_000
STDIN = "<stdin>"  # the name seal gives a document read from stdin: it has no path to sign


def content_bytes(
    doc: Document,
    meta: Meta,
    signer: str,
    key: str,
    *,
    path: str,
    text: str,
    source: str,
    omit: Collection[int] = (),
    v1: bool = False,
) -> bytes:
    """The exact bytes a document's signature covers (docs/format.md § 6).

    `text` is the file the document was read from (it tells a tagged scalar from an untagged
    one); `omit` names nodes left out (see `tree_of`). `v1` gives the old message instead."""
    header = _sig.Header(signer, key, meta.version, meta.env, meta.scope, path)
    body = tree_of(doc, text, source, omit=omit)
    try:
        return (_sig.message_v1 if v1 else _sig.message)(header, body)
    except UnicodeEncodeError:
        raise InputError("a lone UTF-16 surrogate escape cannot be signed", file=source) from None


def tree_of(doc: Document, text: str, source: str, *, omit: Collection[int] = ()) -> _sig.Map:
    """The document's top-level mapping without its `sealer` entry, as a neutral tree.

    Aliases are expanded (refused past MAX_NODES nodes, and when recursive). The nodes whose ids
    are in `omit` are left out, and so is a collection they alone filled: signing checks an old
    signature over the document as it was before this run sealed its new plaintext values."""
    reader = _Reader(text, source, frozenset(omit))
    entries = []
    for k, v in doc.root.value:
        if k.id == "scalar" and k.value == "sealer":
            continue
        value = reader.node(v)
        if value is not None:
            entries.append((reader.key(k), value))
    return ("m", str(doc.root.tag), entries)


class _Reader:
    def __init__(self, text: str, source: str, omit: frozenset[int]) -> None:
        self.text = text
        self.source = source
        self.omit = omit
        self.budget = MAX_NODES
        self.stack: set[int] = set()
        self._tags: dict[tuple[int, int], str] | None = None

    def node(self, node: Any, *, keep: bool = False) -> _sig.Node | None:
        if not keep and id(node) in self.omit:
            return None
        self.budget -= 1
        if self.budget < 0:
            raise InputError(f"more than {MAX_NODES} nodes once aliases are expanded", file=self.source)
        if node.id == "scalar":
            return ("s", str(node.tag), str(node.value), self.style(node))
        if id(node) in self.stack:
            raise InputError("a recursive alias cannot be signed", file=self.source)
        self.stack.add(id(node))
        try:
            if node.id == "sequence":
                items = [n for n in map(self.node, node.value) if n is not None]
                if node.value and not items:
                    return None  # every item omitted: the sequence came with them
                return ("l", str(node.tag), items)
            entries = []
            for k, v in node.value:
                value = self.node(v)
                if value is not None:
                    entries.append((self.key(k), value))
            if node.value and not entries:
                return None
            return ("m", str(node.tag), entries)
        finally:
            self.stack.discard(id(node))

    def key(self, node: Any) -> _sig.Node:
        """A mapping key: never omitted (only values are)."""
        out = self.node(node, keep=True)
        assert out is not None  # keys are scalars (sealer._document refuses complex keys)
        return out

    def style(self, node: Any) -> str:
        """PLAIN, QUOTED or TAGGED (docs/format.md § 6). A scalar's first character is `!` when it
        has a tag property and `&` when it has an anchor (which may follow or precede a tag);
        neither can start a scalar's content, so other scalars need no second look."""
        start = node.start_mark.index
        if self.text[start : start + 1] in ("!", "&"):
            tag = self.tags().get((start, node.end_mark.index))
            if tag == "!":
                raise InputError(
                    "the non-specific tag ! cannot be signed: YAML readers disagree on what it means",
                    file=self.source,
                    hint="remove the tag, or write !!str",
                )
            if tag is not None:
                return _sig.TAGGED
        return _sig.PLAIN if node.style is None else _sig.QUOTED

    def tags(self) -> dict[tuple[int, int], str]:
        """(start, end) -> tag property, for every tagged scalar of the text (one more parse, only
        for documents with tags or anchors)."""
        if self._tags is None:
            self._tags = explicit_tags(self.text)
        return self._tags


def explicit_tags(text: str) -> dict[tuple[int, int], str]:
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import Composer

    found: dict[tuple[int, int], str] = {}

    class Recording(Composer):
        def compose_scalar_node(self, anchor: Any) -> Any:
            tag = self.parser.peek_event().ctag
            node = super().compose_scalar_node(anchor)
            if tag is not None:
                found[(node.start_mark.index, node.end_mark.index)] = str(tag)
            return node

    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = Recording
    for _ in yaml.compose_all(text):
        pass
    return found


def repo_path(source: str, root: str | os.PathLike[str] | None) -> str:
    """The path a signature names (docs/format.md § 6) when the caller does not say it: the file's
    path relative to the repository root (the directory of `.sealer.yaml`), POSIX.

    Callers that know the repository-relative path (check, unseal, reseal, the controller, seal
    and set through `Repository`) pass it; this is the fallback for a bare name: an absolute
    path under `root` counts relative to it, any other absolute path by its file name alone, and a
    relative one as given (relative to the root)."""
    given = Path(source)
    if given.is_absolute():
        if root is not None:
            lexical = Path(os.path.normpath(given))
            top = Path(os.path.normpath(os.path.abspath(root)))
            if lexical.is_relative_to(top) and lexical != top:
                return lexical.relative_to(top).as_posix()
        return given.name
    rel = posixpath.normpath(source.replace(os.sep, "/"))
    return posixpath.basename(rel) if rel == ".." or rel.startswith("../") else rel  # outside: the name
