"""What a typed plaintext may be (docs/format.md § 5, "Value types").

A token's type byte says how its plaintext reads. Sealing and opening both hold every typed
plaintext to its canonical form, so that what comes out of a token is always one YAML scalar of
the type it claims: a value sealed by anyone holding the public key can never become YAML syntax
(a newline, a `:` and a new key) when it is written back into a document.

The forms are the YAML 1.2 core schema's (plus timestamps), as sealer's reader resolves plain
scalars; they are single-line by construction.
"""

from __future__ import annotations

import functools
import re

from .token import TYPES

# Each form needs a digit: `_` alone would match the reader's patterns, yet it is no number.
_D = r"(?=[0-9a-fA-F_]*[0-9a-fA-F])"
_INT = rf"[-+]?(?:0b(?=[01_]*[01])[01_]+|0o?(?=[0-7_]*[0-7])[0-7_]+|(?=[0-9_]*[0-9])[0-9_]+|0x{_D}[0-9a-fA-F_]+)"
_FLOAT = (
    r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?\.(?=[0-9_]*[0-9])[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)"
)
_BOOL = r"true|True|TRUE|false|False|FALSE"
_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?"
)
# The patterns by type; a float may also be written as an integer under an explicit `!!float` tag.
FORMS = {"i": _INT, "f": f"{_FLOAT}|{_INT}", "t": _BOOL, "d": _TIMESTAMP, "plain-float": _FLOAT}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    """Compiled on first use: a Secret's values are all `s` and `b`, and a cold unseal never needs these."""
    return re.compile(FORMS[name])


def problem(vtype: str, plaintext: bytes) -> str | None:
    """Why `plaintext` is not a value of `vtype`, or None when it is. Never quotes the value."""
    if vtype not in TYPES:
        return f"unknown value type {vtype!r}"
    if vtype == "b":
        return None
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text as its type says"
    if vtype == "s":
        return None
    if _pattern(vtype).fullmatch(text) is None:
        return f"is not a canonical {TYPES[vtype]} (docs/format.md § 5)"
    return None


def scalar_text(vtype: str, text: str) -> str:
    """A canonical typed plaintext as a one-line YAML scalar of its type: the text itself, tagged
    where a plain scalar would read as another type (`!!float 1`)."""
    if vtype == "f" and _pattern("plain-float").fullmatch(text) is None:
        return f"!!float {text}"
    return text
