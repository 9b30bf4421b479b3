"""The token's text and header: `ENC[sealer.v1,<kid>[+<kid>…],<blob>]` (docs/format.md § 5).

The header is `type ‖ sealed_at ‖ [expires_at] ‖ hints`: a type byte in upper case says the
optional expiry is there. A reader that predates expiries sees an unknown type and refuses the
token, rather than open it and ignore its expiry; tokens without one keep their 12 bytes.

This is the only place that knows what a token looks like. Everything else asks `is_token`,
`mentions_tokens`, `find_tokens` or `parse_token`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import TokenError

VERSION = "sealer.v1"
PREFIX = "ENC[sealer."  # every token starts so; a reader seeing it with another version reports that
TYPES = {"s": "str", "b": "bytes", "i": "int", "f": "float", "t": "bool", "d": "timestamp"}
HEADER_LEN = 1 + 5 + 6  # type, uint40 seal time, hints (env, scope, namespace, name: 1 byte; path: 2)
EXPIRY_LEN = 5  # uint40 expiry, after the seal time, when the type byte is upper case
MAX_TIME = 2**40 - 1
_WITH_EXPIRY = frozenset(t.upper() for t in TYPES)  # the type bytes of a header that holds an expiry

# The one token grammar. Group 1: version, 2: kids, 3: blob.
TOKEN_RE = re.compile(r"ENC\[(sealer\.v[0-9]+),([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")


@dataclass(frozen=True)
class Token:
    version: str
    kids: tuple[str, ...]
    vtype: str
    sealed_at: int
    hints: bytes
    payload: bytes
    header: bytes
    expires_at: int | None = None  # Unix seconds; None: the value never expires


def is_token(text: object) -> bool:
    """Does this scalar claim to be a token? (Whether it parses is `parse_token`'s question.)"""
    return isinstance(text, str) and text.startswith(PREFIX)


def mentions_tokens(text: str) -> bool:
    """Cheap pre-filter: can this text hold a token at all?"""
    return PREFIX in text


def count_mentions(text: str) -> int:
    return text.count(PREFIX)


def find_tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, kid list text) of every well-formed token in free text (lines, files)."""
    for m in TOKEN_RE.finditer(text):
        yield m.start(), m.end(), m.group(2)


def token_kids(text: str) -> tuple[str, ...]:
    """The kids a token names, readable without decoding its blob; () when it is not a token."""
    m = TOKEN_RE.fullmatch(text)
    return tuple(m.group(2).split("+")) if m else ()


def is_well_formed(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def make_header(vtype: str, sealed_at: int, hints: bytes, expires_at: int | None = None) -> bytes:
    if vtype not in TYPES:
        raise ValueError(f"unknown value type {vtype!r}")
    if expires_at is None:
        return vtype.encode() + sealed_at.to_bytes(5, "big") + hints
    if not sealed_at < expires_at <= MAX_TIME:
        raise ValueError("a value's expiry must come after its seal time")  # callers say which value
    return vtype.upper().encode() + sealed_at.to_bytes(5, "big") + expires_at.to_bytes(EXPIRY_LEN, "big") + hints


def encode_token(kids: tuple[str, ...], header: bytes, payload: bytes) -> str:
    return f"ENC[{VERSION},{'+'.join(kids)},{b64(header + payload)}]"


def parse_token(text: str) -> Token:
    m = TOKEN_RE.fullmatch(text)
    if not m:
        version = text[4 : text.find(",")] if text.startswith(PREFIX) and "," in text else VERSION
        if version != VERSION and version.replace(".", "").isalnum():
            raise TokenError(f"unknown token version {version}", hint="this sealer reads sealer.v1; upgrade sealer")
        raise TokenError("malformed sealed token", hint="it was truncated or edited; set the value again")
    version, kids_text, blob_text = m.groups()
    if version != VERSION:
        raise TokenError(f"unknown token version {version}", hint="this sealer reads sealer.v1; upgrade sealer")
    try:
        blob = base64.urlsafe_b64decode(blob_text + "=" * (-len(blob_text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed sealed token: bad base64", hint="set the value again") from None
    if b64(blob) != blob_text:
        raise TokenError("malformed sealed token: non-canonical base64", hint="set the value again")
    kids = tuple(kids_text.split("+"))
    if len(set(kids)) != len(kids):
        raise TokenError("malformed sealed token: a key id is listed twice")
    code = chr(blob[0]) if blob else ""
    expiring = code in _WITH_EXPIRY
    size = HEADER_LEN + EXPIRY_LEN if expiring else HEADER_LEN
    if len(blob) < size + 1 or code.lower() not in TYPES:
        raise TokenError("malformed sealed token: bad header", hint="set the value again")
    sealed_at = int.from_bytes(blob[1:6], "big")
    expires_at = int.from_bytes(blob[6 : 6 + EXPIRY_LEN], "big") if expiring else None
    if expires_at is not None and expires_at <= sealed_at:
        raise TokenError("malformed sealed token: it expires before it was sealed", hint="set the value again")
    return Token(
        version=version,
        kids=kids,
        vtype=code.lower(),
        sealed_at=sealed_at,
        hints=blob[size - 6 : size],
        payload=blob[size:],
        header=blob[:size],
        expires_at=expires_at,
    )


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
