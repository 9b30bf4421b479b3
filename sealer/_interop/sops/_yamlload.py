"""Loading YAML as sops's trees: go-yaml's scalar typing, comments kept where go-yaml puts them (in
the mapping or list whose items they sit among), aliases expanded against a budget."""

from __future__ import annotations

import base64
import binascii
import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import SopsFormatError
from ._goyaml import go_resolve, ruamel_resolves
from ._tree import Branch, Comment, GoTime, fmt_path

MAX_NODES: Final = 200_000  # values once YAML aliases are expanded: an alias bomb fails, it does not eat memory


@dataclass
class _Coll:
    node: Any
    col: int
    start: int
    end: int
    depth: int
    item_lines: list[int]
    comments: list[tuple[int, int, Comment]] = field(default_factory=list)


def _yaml_error(err: Exception) -> SopsFormatError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or "cannot parse"
    return SopsFormatError(f"malformed YAML{where}: {problem}")


def load_yaml(text: str, source: str) -> list[Branch]:
    """YAML documents as sops's trees: go-yaml scalar typing, comments kept where go-yaml puts them
    (in the mapping or list whose items they sit among), aliases expanded against a budget."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        roots = list(YAML(typ="safe", pure=True).compose_all(text))
    except YAMLError as err:
        raise _yaml_error(err) from None
    except RecursionError:
        raise SopsFormatError("YAML nested too deeply") from None
    lines = text.split("\n")
    spans: list[tuple[int, int]] = []
    seen: set[int] = set()

    def collect(node: Any) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if n is None or id(n) in seen:
                continue
            seen.add(id(n))
            if n.id == "scalar":
                spans.append((n.start_mark.index, n.end_mark.index))
            elif n.id == "mapping":
                for k, v in n.value:
                    stack += [k, v]
            else:
                stack += list(n.value)

    for root in roots:
        collect(root)
    spans.sort()
    comments = _scan_comments(text, spans)
    markers = _document_markers(lines, spans)
    budget = [MAX_NODES]
    out: list[Branch] = []
    for index, root in enumerate(roots):
        if root is None or (root.id == "scalar" and str(root.tag) == "tag:yaml.org,2002:null"):
            out.append(Branch())
            continue
        if root.id != "mapping":
            raise SopsFormatError(f"YAML document {index} is not a mapping (sops supports mappings only)")
        first = root.start_mark.line
        begin = max((m for m in markers if m < first), default=0)
        nxt = roots[index + 1] if index + 1 < len(roots) else None
        limit = len(lines)
        if nxt is not None:
            limit = max((m for m in markers if m < nxt.start_mark.line), default=nxt.start_mark.line)
        colls = _index_collections(root, begin, limit)
        mine = [c for c in comments if begin <= c[0] < limit]
        _assign_comments(colls, mine)
        by_node = {id(c.node): c for c in colls}
        out.append(_build(root, [], by_node, budget, set()))
    return out


def _in_span(spans: list[tuple[int, int]], index: int) -> bool:
    i = bisect.bisect_right(spans, (index, math.inf)) - 1
    return i >= 0 and spans[i][0] <= index < spans[i][1]


def _scan_comments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, Comment]]:
    """Every comment: (line, column, Comment). A '#' starts one at a line's start or after a blank,
    outside any scalar."""
    found: list[tuple[int, int, Comment]] = []
    offset = 0
    for number, line in enumerate(text.split("\n")):
        start = 0
        while True:
            i = line.find("#", start)
            if i < 0:
                break
            if (i == 0 or line[i - 1] in " \t") and not _in_span(spans, offset + i):
                body = line[i + 1 :]
                body = body[:-1] if body.endswith("\r") else body
                inline = bool(line[:i].strip())
                if not line.lstrip().startswith("%"):
                    found.append((number, i, Comment(body, inline)))
                break
            start = i + 1
        offset += len(line) + 1
    return found


def _document_markers(lines: list[str], spans: list[tuple[int, int]]) -> list[int]:
    markers = []
    offset = 0
    for number, line in enumerate(lines):
        if (line == "---" or line.startswith(("--- ", "---\t"))) and not _in_span(spans, offset):
            markers.append(number)
        offset += len(line) + 1
    return markers


def _index_collections(root: Any, begin: int, limit: int) -> list[_Coll]:
    colls: list[_Coll] = []
    seen: set[int] = set()

    def visit(node: Any, owner_line: int | None, depth: int) -> None:
        if id(node) in seen or node.id == "scalar":
            return
        seen.add(id(node))
        if node.id == "mapping":
            items = [k.start_mark.line for k, _ in node.value]
            children = [(v, k.start_mark.line) for k, v in node.value]
        else:
            items = [v.start_mark.line for v in node.value]
            children = [(v, v.start_mark.line) for v in node.value]
        start = node.start_mark.line
        if owner_line is None:
            start = begin
        elif start > owner_line:
            start = owner_line + 1
        last = max([node.end_mark.line, *(v.end_mark.line + 1 for v, _ in children)]) if children else start + 1
        end = node.end_mark.line + 1 if node.flow_style else max(node.end_mark.line, last)
        if owner_line is None:
            end = limit
        colls.append(_Coll(node, node.start_mark.column, start, end, depth, items))
        for child, line in children:
            visit(child, line, depth + 1)

    visit(root, None, 0)
    return colls


def _assign_comments(colls: list[_Coll], comments: list[tuple[int, int, Comment]]) -> None:
    """Put each comment into the collection go-yaml and sops would: an inline one with the item on
    its line; a full-line one into the deepest collection around it whose items are not indented
    further than the comment."""
    root = min(colls, key=lambda c: c.depth)
    for line, col, comment in comments:
        target = None
        if comment.inline:
            holders = [c for c in colls if line in c.item_lines]
            if holders:
                target = max(holders, key=lambda c: (c.depth, c.start))
        if target is None:
            around = [c for c in colls if c.start <= line < c.end and c.col <= col]
            target = max(around, key=lambda c: (c.depth, c.start)) if around else root
        target.comments.append((line, col, comment))


def _build(node: Any, path: list[str], colls: dict[int, _Coll], budget: list[int], active: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise SopsFormatError(f"more than {MAX_NODES} values once YAML aliases are expanded")
    if node.id == "scalar":
        return _scalar(node, path)
    if id(node) in active:
        raise SopsFormatError(f"{fmt_path(path)}: a recursive YAML alias")
    active.add(id(node))
    coll = colls.pop(id(node), None)  # an alias's second use carries no comments
    notes = sorted(coll.comments, key=lambda c: (c[0], c[1])) if coll else []
    result: Any
    if node.id == "mapping":
        result = Branch()
        keys: set[str] = set()
        for (key_node, value_node), line in zip(node.value, (k.start_mark.line for k, _ in node.value), strict=True):
            notes = _flush_comments(notes, line, result, as_keys=True)
            if key_node.id != "scalar":
                raise SopsFormatError(f"{fmt_path(path)}: complex mapping keys are not supported")
            key = _scalar(key_node, path)
            if not isinstance(key, str):
                raise SopsFormatError(
                    f"{fmt_path(path)}: the key {key_node.value!r} is not a string (sops supports string keys only)"
                )
            if key in keys:
                raise SopsFormatError(f"{fmt_path(path)}: duplicate key {key!r}")
            keys.add(key)
            result.append((key, _build(value_node, [*path, key], colls, budget, active)))
        _flush_comments(notes, math.inf, result, as_keys=True)
    else:
        result = []
        for item in node.value:
            notes = _flush_comments(notes, item.start_mark.line, result, as_keys=False)
            result.append(_build(item, path, colls, budget, active))
        _flush_comments(notes, math.inf, result, as_keys=False)
    active.discard(id(node))
    return result


def _flush_comments(notes: list[tuple[int, int, Comment]], line: float, out: list[Any], *, as_keys: bool) -> list[Any]:
    """Append the comments that come before an item starting at `line` (inline ones on that line too)."""
    rest = []
    for note in notes:
        if note[0] < line or (note[0] == line and note[2].inline):
            out.append((note[2], None) if as_keys else note[2])
        else:
            rest.append(note)
    return rest


_STR_TAG: Final = "tag:yaml.org,2002:str"


def _scalar(node: Any, path: list[str]) -> Any:
    """A scalar as go-yaml v3 decodes it into interface{} (what sops works on)."""
    value = str(node.value)
    tag = str(node.tag)
    if node.style is None:
        if tag == ruamel_resolves(value):
            return go_resolve(value)
    elif tag == _STR_TAG:
        return value
    # An explicit tag.
    short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else None
    if short == "str":
        return value
    if short == "binary":
        try:
            return base64.b64decode("".join(value.split()), validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            raise SopsFormatError(f"{fmt_path(path)}: malformed !!binary value") from None
    if short in ("int", "float", "bool", "null", "timestamp"):
        resolved = go_resolve(value)
        kind = {int: "int", float: "float", bool: "bool", type(None): "null", GoTime: "timestamp"}.get(type(resolved))
        if kind == short or (short == "float" and kind == "int"):
            return float(resolved) if short == "float" else resolved
        raise SopsFormatError(f"{fmt_path(path)}: the value is not a valid !!{short}")
    return value  # an unknown tag: go-yaml keeps the text
