"""YAML out: a small encoder for JSON-like data that every YAML reader reads back as the same data.

Unsealed output goes to kubectl (Go, sigs.k8s.io/yaml over yaml.v2: YAML 1.1 rules, so `on`, `yes`
and `0777` are a bool and an int), to PyYAML (1.1) and to ruamel and yaml.v3 (1.2). A string is
written plain only where plain means a string under both versions (a conservative allow-list plus a
deny-list of the special words); multi-line printable text is a literal block with the chomping
indicator that gives its exact trailing newlines back; everything else is double-quoted with
escapes. Lines are never folded (certificates, tokens). Block style, two spaces, keys in the order
given, sequences inside mappings not indented (kubectl's and ruamel's own layout).

No dependency: the k8s output path imports nothing of ruamel for writing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "core_scalar",
    "dump_documents",
    "dumps",
    "inline_scalar",
    "plain_ok",
    "quote_string",
    "yaml_float",
    "yaml_string",
]

# --- one-line scalars for splicing (sealer's own files, `--format yaml`) ----------------------------


def yaml_string(text: str) -> str:
    """A string as a one-line YAML scalar, safe in block and flow context: plain when that reads back
    as the same string under YAML 1.1 and 1.2, else double-quoted."""
    if _PLAIN_SAFE.fullmatch(text) and text.lower() not in _PLAIN_WORDS:
        return text
    return quote_string(text)


# Strings written back unquoted: a letter first, no YAML indicators (not even flow ones), not a word
# YAML 1.1 reads as bool/null. A letter first also rules out every number, timestamp and `.inf`.
_PLAIN_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_./@+-]*")
_PLAIN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})

_QUOTE_FAST = re.compile(r"[\x20-\x7e]*")
_QUOTE_ESC = str.maketrans({'"': '\\"', "\\": "\\\\"})


def quote_string(s: str) -> str:
    """A YAML double-quoted string; every non-printable character escaped."""
    if _QUOTE_FAST.fullmatch(s):
        return '"' + s.translate(_QUOTE_ESC) + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= o < 0x7F or (o > 0xA0 and _printable(o)):
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _printable(o: int) -> bool:
    # YAML's printable set, minus the BOM and line/paragraph separators that would confuse readers.
    return not (0xD800 <= o <= 0xDFFF or o in (0xFEFF, 0xFFFE, 0xFFFF, 0x2028, 0x2029, 0x85))


# --- the block encoder ---------------------------------------------------------------------------

# Plain in block context (never inside flow collections: we write none with content). It starts with
# a letter, `_`, `/`, a dot and a letter (`.dockerconfigjson`), one or two dashes and a letter
# (`--port`), or a digit when a letter that no number or timestamp syntax uses follows somewhere
# (`512Mi`, `500m`): so never a number, timestamp, `.inf`, `~`, `=`, `<<`, an indicator or a
# directive. Then word characters and punctuation that is inert after the first character; inner
# spaces, no leading or trailing ones. No `#` (a comment after a space), no `: ` and no final `:`
# (checked apart), no quote but `'`. Special words are refused by name below.
_WORD = r"[\w./@+=:,~%!$&*()?^;'-]"
_FIRST = r"(?:[^\W\d]|/|\.[^\W\d_]|--?[^\W\d_]|[0-9](?=.*[g-nq-su-wyG-NQ-SU-WY]))"
_PLAIN = re.compile(rf"{_FIRST}{_WORD}*(?: +{_WORD}+)*")
_SPECIAL = frozenset(
    {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~", ".inf", ".nan", "+.inf", "-.inf"}
)
_MAX_SIMPLE_KEY = 1000  # YAML allows at most 1024 characters in an implicit key
_INDENT = 2


def plain_ok(text: str) -> bool:
    """Does `text`, written plain in block context, read back as this string under YAML 1.1 and 1.2?"""
    return (
        _PLAIN.fullmatch(text) is not None
        and text.lower() not in _SPECIAL
        and ": " not in text
        and not text.endswith(":")
    )


def _literal_ok(text: str) -> bool:
    """Multi-line text that a literal block gives back exactly: printable, no tabs or CR, some
    content, and no line of spaces only (their meaning in a block scalar depends on indentation)."""
    if "\n" not in text or not text.strip("\n"):
        return False
    for ch in text:
        o = ord(ch)
        if not (0x20 <= o < 0x7F or ch == "\n" or (o > 0xA0 and _printable(o))):
            return False
    return all(line.strip(" ") or not line for line in text.split("\n"))


def inline_scalar(value: Any) -> str:
    """A scalar on one line (no literal blocks): for keys, and anywhere a one-line form is needed."""
    if isinstance(value, str):
        return value if plain_ok(value) else quote_string(value)
    text = core_scalar(value, yaml_float)
    if text is None:
        raise TypeError(f"cannot write a {type(value).__name__} as YAML")
    return text


def core_scalar(value: Any, float_text: Callable[[float], str]) -> str | None:
    """None, a bool or an int as YAML and JSON both write them (`null`, `true`, `42`), a float as
    `float_text` writes it (the formats differ there); None for a value of any other type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    return None


def yaml_float(f: float, *, yaml11: bool = True) -> str:
    """`.nan`, `.inf`, `-.inf`, else the shortest text that round-trips. `yaml11`: write `1e+20` as
    `1.0e+20`, which a YAML 1.1 reader needs to see a float (go-yaml, and so sops, writes it bare)."""
    if math.isnan(f):
        return ".nan"
    if math.isinf(f):
        return ".inf" if f > 0 else "-.inf"
    r = repr(f)
    if yaml11 and "e" in r and "." not in r:
        r = r.replace("e", ".0e", 1)
    return r


def _literal(text: str, indent: int) -> str:
    """`|`-block header and body, the body at `indent` columns. The header ends the current line."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # the final line break is the chomping indicator's business
        chomp = "+" if text.endswith("\n\n") else ""
    else:
        chomp = "-"
    first = next(line for line in lines if line)
    indicator = str(_INDENT) if first.startswith(" ") else ""
    pad = " " * indent
    body = "".join(f"{pad}{line}\n" if line else "\n" for line in lines)
    return f"|{indicator}{chomp}\n{body}"


def _value(v: Any, indent: int, out: list[str]) -> None:
    """A node after `key:` or `- ` (already written, no space yet), at the collection's `indent`."""
    if isinstance(v, str) and _literal_ok(v):
        out.append(" ")
        out.append(_literal(v, indent + _INDENT))
    elif isinstance(v, dict) and v:
        out.append("\n")
        _mapping(v, indent + _INDENT, out, inline=False)
    elif isinstance(v, list) and v:
        out.append("\n")
        _sequence(v, indent, out, inline=False)  # not indented under a key
    else:
        out.append(" ")
        out.append(_flow_empty(v) if isinstance(v, dict | list) else inline_scalar(v))
        out.append("\n")


def _flow_empty(v: dict[Any, Any] | list[Any]) -> str:
    return "{}" if isinstance(v, dict) else "[]"


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"mapping keys must be strings, not {type(k).__name__}")
    return inline_scalar(k)


def _mapping(d: dict[Any, Any], indent: int, out: list[str], *, inline: bool) -> None:
    pad = " " * indent
    for n, (k, v) in enumerate(d.items()):
        if n or not inline:
            out.append(pad)
        key = _key(k)
        if len(key) > _MAX_SIMPLE_KEY:
            out.append(f"? {key}\n{pad}:")
        else:
            out.append(key + ":")
        _value(v, indent, out)


def _sequence(items: list[Any], indent: int, out: list[str], *, inline: bool) -> None:
    pad = " " * indent
    for n, item in enumerate(items):
        if n or not inline:
            out.append(pad)
        out.append("-")
        if isinstance(item, dict) and item:
            out.append(" ")
            _mapping(item, indent + _INDENT, out, inline=True)
        elif isinstance(item, list) and item:
            out.append(" ")
            _sequence(item, indent + _INDENT, out, inline=True)
        else:
            _value(item, indent, out)


def dumps(data: Any) -> str:
    """One YAML document (no `---`), ending in a newline."""
    out: list[str] = []
    if isinstance(data, dict) and data:
        _mapping(data, 0, out, inline=False)
    elif isinstance(data, list) and data:
        _sequence(data, 0, out, inline=False)
    elif isinstance(data, str) and _literal_ok(data):
        out.append(_literal(data, _INDENT))
    else:
        out.append(_flow_empty(data) if isinstance(data, dict | list) else inline_scalar(data))
        out.append("\n")
    return "".join(out)


def dump_documents(docs: Iterable[Any]) -> str:
    """A YAML stream: every document after a `---` line."""
    return "".join("---\n" + dumps(d) for d in docs)
