"""Splice edits into a sealed file's text: the only way sealer changes a YAML file.

Nothing is ever dumped: each change is an `Edit` (a character span and its new text) and
`apply_edits` joins them with the untouched text between, so comments, key order, quoting,
indentation and line endings outside the edited spans stay byte-identical. The helpers here know
where a scalar's own text ends (`scalar_end`, block scalars without their trailing blank lines),
keep a scalar's quote style when a token or value replaces it (`replace_scalar`), and insert,
rewrite or drop the `sealer:` block as whole lines in the file's own newline style.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._format import is_token
from .compose import Document, Meta


@dataclass
class Edit:
    start: int
    end: int
    text: str


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    out = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise AssertionError("overlapping edits")
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def replace_scalar(text: str, node: Any, new: str, *, in_flow: bool, quote_ok: bool = True) -> Edit:
    """Replace a scalar's source span with `new`, keeping the original quote style where it can.

    Tokens are quoted inside flow collections, where `,`, `[` and `]` would end a plain scalar. A
    block scalar's header comment (`key: | # note`) stays after the token.
    """
    start, end = node.start_mark.index, scalar_end(text, node)
    style = node.style
    token = is_token(new)
    if style in ("|", ">"):
        header = text[start : text.find("\n", start) if "\n" in text[start:end] else end]
        comment = re.search(r"[ \t]#.*$", header)
        return Edit(start, end, new + (comment.group().rstrip("\r") if comment else ""))
    if style == "'" and quote_ok and "'" not in new and "\n" not in new:
        return Edit(start, end, f"'{new}'")
    if token and ((style == '"' and quote_ok) or in_flow):
        return Edit(start, end, f'"{new}"')
    return Edit(start, end, new)


def scalar_end(text: str, node: Any) -> int:
    """End of a node's own text. A block scalar's span runs on over trailing blank lines: not those."""
    end = int(node.end_mark.index)
    if node.id == "scalar" and node.style in ("|", ">"):
        end = node.start_mark.index + len(text[node.start_mark.index : end].rstrip(" \t\r\n"))
    return end


def newline_of(text: str) -> str:
    """The file's line ending, for lines we add: CRLF files stay CRLF."""
    return "\r\n" if "\r\n" in text else "\n"


def meta_edit(text: str, doc: Document, meta: Meta) -> Edit | None:
    """Insert or update the document's sealer: block; None when it is already right."""
    if doc.meta == meta:
        return None
    indent = " " * doc.root.start_mark.column
    block = meta.render(indent, newline_of(text))
    if doc.meta_span is not None:
        start, end = doc.meta_span
        # Replace whole lines: from the key's line start to the end of the block's last line.
        line_start = text.rfind("\n", 0, start) + 1
        end = line_end(text, end)
        return Edit(line_start, end, block)
    at = doc.root.end_mark.index
    at = line_end(text, at)
    prefix = "" if at == 0 or text[at - 1] == "\n" else newline_of(text)
    return Edit(at, at, prefix + block)


def remove_meta(text: str, doc: Document) -> Edit | None:
    if doc.meta_span is None:
        return None
    start, end = doc.meta_span
    return Edit(text.rfind("\n", 0, start) + 1, line_end(text, end), "")


def line_end(text: str, index: int) -> int:
    """The index just past the line break ending the line that `index` is on (or at a line start)."""
    if index == 0 or index >= len(text) or text[index - 1] == "\n":
        return index
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1
