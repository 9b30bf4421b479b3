"""go-yaml v3 (sops's YAML library), as far as sops's files depend on it: what it makes of a plain
scalar (so unencrypted values hash as sops hashes them), and how it writes a tree, in sops's layout
with an indent of 4 (so sops's output is reproduced line for line)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Final

from ..._yamlout import core_scalar, quote_string, yaml_float
from ._errors import SopsUnsupportedError
from ._tree import INT64, Branch, Comment, GoTime, Uint64, check_utf8, has_items, heads, make_time

# --- scalar resolution -----------------------------------------------------------------------------

_YAML_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_TRUE: Final = frozenset({"true", "True", "TRUE"})
_YAML_FALSE: Final = frozenset({"false", "False", "FALSE"})
_YAML_SPECIAL_FLOATS: Final = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{p + s: math.inf for p in ("", "+") for s in (".inf", ".Inf", ".INF")},
    **{"-" + s: -math.inf for s in (".inf", ".Inf", ".INF")},
}
_YAML_FLOAT_RE: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_YAML_DOT_FLOAT_RE: Final = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_YAML_TS_RE: Final = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>\d{1,2}):(?P<M>\d{1,2}):(?P<S>\d{1,2})(?P<frac>[.,]\d+)?(?P<zone>Z|[+-]\d{2}:\d{2})?)?"
)
_OLD_BOOLS: Final = frozenset(
    {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
    | {"true", "True", "TRUE", "false", "False", "FALSE"}
)
_BASE60_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_DIGITS: Final = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), then ParseUint (underscores already removed)."""
    body, sign = text, 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    value = sign * int(digits, base)
    if INT64[0] <= value <= INT64[1]:
        return value
    if sign > 0 and text[:1] != "+" and value < 2**64:
        return Uint64(value)
    return None


def _yaml_timestamp(text: str) -> GoTime | None:
    """go-yaml's timestamp forms: RFC 3339 with short fields (T or t), 'date time' (UTC), a date."""
    m = _YAML_TS_RE.fullmatch(text)
    if m is None:
        return None
    if m["sep"] is None:
        return make_time(f"{m['y']}-{m['m']}-{m['d']}", "0:0:0", "", None)
    if (m["sep"] == " ") != (m["zone"] is None):
        return None  # a zone needs T, and the space form has none
    return make_time(f"{m['y']}-{m['m']}-{m['d']}", f"{m['H']}:{m['M']}:{m['S']}", m["frac"] or "", m["zone"])


def go_resolve(text: str) -> Any:
    """What go-yaml v3 (sops's YAML library) makes of a plain scalar."""
    if text in _YAML_NULLS:
        return None
    if text in _YAML_TRUE:
        return True
    if text in _YAML_FALSE:
        return False
    if text in _YAML_SPECIAL_FLOATS:
        return _YAML_SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        return float(text) if _YAML_DOT_FLOAT_RE.fullmatch(text) else text
    if first.isdigit() or first in "+-":
        if first.isdigit():
            stamp = _yaml_timestamp(text)
            if stamp is not None:
                return stamp
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT_RE.fullmatch(plain):
            return float(plain)
    return text


def ruamel_resolves(text: str) -> str:
    """The tag ruamel (YAML 1.2, sealer's reader) gives a plain scalar."""
    from ruamel.yaml.nodes import ScalarNode

    return str(_resolver().resolve(ScalarNode, text, (True, False)))


_RESOLVER: list[Any] = []


def _resolver() -> Any:
    if not _RESOLVER:
        from ruamel.yaml import YAML

        _RESOLVER.append(YAML(typ="safe", pure=True).resolver)
    return _RESOLVER[0]


def _yaml_needs_quotes(text: str) -> bool:
    """A string that go-yaml (or a YAML 1.2 reader such as sealer's) would not read back as a string."""
    if not isinstance(go_resolve(text), str):
        return True
    if text in _OLD_BOOLS or _BASE60_RE.fullmatch(text) or text == "<<":
        return True
    return ruamel_resolves(text) != "tag:yaml.org,2002:str"


# --- scalars as go-yaml writes them ----------------------------------------------------------------

_INDENT: Final = 4
_PLAIN_FIRST_BAD: Final = set("[]{},#&*!|>'\"%@`")
_PLAIN_FIRST_NEEDS_FOLLOW: Final = set("-?:")


def _next_indent(indent: int) -> int:
    """go-yaml's rule: nested blocks go to the next multiple of the indent."""
    return _INDENT * ((indent + _INDENT) // _INDENT)


def _printable(ch: str) -> bool:
    o = ord(ch)
    if o in (0x09, 0x0A):
        return True
    if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
        return False
    return not (0xD800 <= o <= 0xDFFF or o in (0xFEFF, 0xFFFE, 0xFFFF, 0x2028, 0x2029, 0x85))


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or "\t" in text or "\n" in text:
        return False
    if text[0] in _PLAIN_FIRST_BAD:
        return False
    if text[0] in _PLAIN_FIRST_NEEDS_FOLLOW and (len(text) == 1 or text[1] == " "):
        return False
    if ": " in text or " #" in text or text.endswith(":") or text.startswith(("---", "...")):
        return False
    return all(_printable(c) for c in text)


def _literal_ok(text: str) -> bool:
    if text[0] in " \n" or "\r" in text or "\t" in text:
        return False
    if not all(_printable(c) for c in text):
        return False
    return not any(line != line.rstrip(" ") for line in text.split("\n"))


def _yaml_str(text: str, *, is_key: bool = False) -> str | tuple[str, list[str]]:
    """A string as go-yaml would write it: plain when it reads back as the same string, a literal
    block for multi-line text, else quoted. Returns (header, lines) for a block scalar."""
    check_utf8(text)
    if text == "":
        return '""'
    if _yaml_needs_quotes(text):
        return quote_string(text)
    if "\n" in text and not is_key and _literal_ok(text):
        body = text[:-1] if text.endswith("\n") else text
        chomp = "-" if not text.endswith("\n") else ("+" if text.endswith("\n\n") else "")
        return "|" + chomp, body.split("\n")
    if _plain_ok(text):
        return text
    if "\n" not in text and all(_printable(c) and c != "\t" for c in text):
        return "'" + text.replace("'", "''") + "'"
    return quote_string(text)


def _go_yaml_float(value: float) -> str:
    return yaml_float(value, yaml11=False)  # go-yaml writes `1e+20`, no `.0` for YAML 1.1 readers


def _yaml_scalar(value: Any) -> str | tuple[str, list[str]]:
    core = core_scalar(value, _go_yaml_float)
    if core is not None:
        return core
    if isinstance(value, GoTime):
        return value.text
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return _yaml_str(value)
    raise SopsUnsupportedError(f"cannot write a value of type {type(value).__name__} as YAML")


# --- blocks ----------------------------------------------------------------------------------------


def _comment_line(indent: int, comment: Comment) -> str:
    check_utf8(comment.text)
    if "\n" in comment.text or "\r" in comment.text:
        raise SopsUnsupportedError("a comment holds a line break")
    return " " * indent + "#" + comment.text


def _inline_suffix(comment: Comment | None) -> str:
    return "" if comment is None else " " + _comment_line(0, comment)


def _is_block(value: Any) -> bool:
    return isinstance(value, (Branch, list)) and has_items(value)


def _emit_value_lines(head: str, value: Any, content_indent: int, inline: Comment | None) -> list[str]:
    """`head` is what precedes the value on its line ("key:" or "-")."""
    suffix = _inline_suffix(inline)
    if isinstance(value, (Branch, list)) and not has_items(value):
        return [f"{head} {'{}' if isinstance(value, Branch) else '[]'}{suffix}"]
    scalar = _yaml_scalar(value)
    if isinstance(scalar, tuple):
        header, body = scalar
        return [f"{head} {header}{suffix}", *((" " * content_indent + line) if line else "" for line in body)]
    return [f"{head} {scalar}{suffix}"]


def _emit_block(collection: Branch | list[Any], indent: int) -> list[str]:
    """A mapping or a list in block style. A full-line comment keeps its line; an inline one goes
    after the next entry's first line, and any more of them onto lines of their own."""
    lines: list[str] = []
    inline: list[Comment] = []
    is_map = isinstance(collection, Branch)
    for entry in collection:
        head = entry[0] if is_map else entry
        if isinstance(head, Comment):
            if head.inline:
                inline.append(head)
            else:
                lines.append(_comment_line(indent, head))
            continue
        note = inline.pop(0) if inline else None
        lines += [_comment_line(indent, c) for c in inline]
        inline = []
        lines += _emit_entry(entry[0], entry[1], indent, note) if is_map else _emit_item(entry, indent, note)
    lines += [_comment_line(indent, c) for c in inline]
    return lines


def _emit_entry(key: str, value: Any, indent: int, note: Comment | None) -> list[str]:
    k = _yaml_str(key, is_key=True)
    assert isinstance(k, str)
    if len(k) > 1024:
        raise SopsUnsupportedError("a mapping key longer than 1024 characters (YAML's limit for keys)")
    head = " " * indent + k + ":"
    if _is_block(value):
        return [head + _inline_suffix(note), *_emit_block(value, _next_indent(indent))]
    return _emit_value_lines(head, value, _next_indent(indent), note)


def _emit_item(item: Any, indent: int, note: Comment | None) -> list[str]:
    dash = " " * indent + "-"
    if not _is_block(item):
        return _emit_value_lines(dash, item, indent + 2, note)
    # Comments before the first entry go above the dash (same AAD: a list adds no path).
    first = heads(item)
    lead = next(i for i, h in enumerate(first) if not isinstance(h, Comment))
    above = [note, *first[:lead]] if note is not None else first[:lead]
    sub = _emit_block(Branch(item[lead:]) if isinstance(item, Branch) else item[lead:], indent + 2)
    return [*(_comment_line(indent, c) for c in above), dash + " " + sub[0][indent + 2 :], *sub[1:]]


def emit_yaml(branches: Sequence[Branch]) -> str:
    docs = []
    for branch in branches:
        lines = _emit_block(branch, 0) if has_items(branch) else [*_emit_block(branch, 0), "{}"]
        docs.append("\n".join(lines) + "\n")
    return "---\n".join(docs)
