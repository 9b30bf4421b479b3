"""Seal and unseal one value, bound to where it lives.

A token is `ENC[sealer.v1,<kid>[+<kid>…],<blob>]` (grammar and exact bytes: docs/format.md).
The blob is a header (type, seal time, context hints) followed by HPKE output: sealed directly to
the single recipient, or, with several recipients, a random data key wrapped to each one and the
value under ChaCha20-Poly1305. Everything the token claims (header, kids) and everything its place
implies (environment, scope, path) goes into the HPKE `info` and the AEAD associated data, so an
edited byte or a moved value does not open. The hints only let the error say *what* moved.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._keys import Identity, Recipient
from ._valuepath import Path, encode_path, format_path
from .errors import IdentityError, TokenError, UnsealError

VERSION = "sealer.v1"
PREFIX = "ENC[sealer."
_TOKEN = re.compile(r"ENC\[(sealer\.v[0-9]+),([0-9a-f]{16}(?:\+[0-9a-f]{16})*),([A-Za-z0-9_-]+)\]")
_VERSION_ONLY = re.compile(r"ENC\[(sealer\.[A-Za-z0-9]+),")

# Value types, one byte in the header. The document layer maps YAML scalars to these.
TYPES = {
    "s": "str",
    "b": "bytes",
    "i": "int",
    "f": "float",
    "t": "bool",
    "d": "timestamp",
}

_HEADER_LEN = 1 + 5 + 6  # type, uint40 seal time, hints (env, scope, namespace, name: 1 byte; path: 2)
_KEY_LEN = 32
_NONCE = bytes(12)  # each data key seals exactly one message


@dataclass(frozen=True)
class Context:
    """Where a value lives. Scope decides which of namespace and name are bound (see `bound`)."""

    env: str
    scope: str  # "strict" | "namespace" | "env" | any other string: a custom scope label
    namespace: str
    name: str
    path: Path

    def bound(self) -> tuple[str, str]:
        if self.scope == "strict":
            return self.namespace, self.name
        if self.scope == "namespace":
            return self.namespace, ""
        return "", ""


@dataclass(frozen=True)
class Token:
    version: str
    kids: tuple[str, ...]
    vtype: str
    sealed_at: int
    hints: bytes
    payload: bytes
    header: bytes


def is_token(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def parse_token(text: str) -> Token:
    m = _TOKEN.fullmatch(text)
    if not m:
        v = _VERSION_ONLY.match(text)
        if v and v.group(1) != VERSION:
            raise TokenError(f"unknown token version {v.group(1)}", hint="this sealer reads sealer.v1; upgrade sealer")
        raise TokenError("malformed sealed token", hint="it was truncated or edited; set the value again")
    version, kids_text, blob_text = m.groups()
    if version != VERSION:
        raise TokenError(f"unknown token version {version}", hint="this sealer reads sealer.v1; upgrade sealer")
    try:
        blob = base64.urlsafe_b64decode(blob_text + "=" * (-len(blob_text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed sealed token: bad base64", hint="set the value again") from None
    if _b64(blob) != blob_text:
        raise TokenError("malformed sealed token: non-canonical base64", hint="set the value again")
    kids = tuple(kids_text.split("+"))
    if len(set(kids)) != len(kids):
        raise TokenError("malformed sealed token: a key id is listed twice")
    if len(blob) < _HEADER_LEN + 1 or chr(blob[0]) not in TYPES:
        raise TokenError("malformed sealed token: bad header", hint="set the value again")
    header = blob[:_HEADER_LEN]
    return Token(
        version=version,
        kids=kids,
        vtype=chr(blob[0]),
        sealed_at=int.from_bytes(blob[1:6], "big"),
        hints=blob[6:_HEADER_LEN],
        payload=blob[_HEADER_LEN:],
        header=header,
    )


def seal(vtype: str, plaintext: bytes, ctx: Context, recipients: Sequence[Recipient], *, sealed_at: int) -> str:
    """Seal one value to every recipient. Callers pass the environment's current recipient list."""
    if vtype not in TYPES:
        raise ValueError(f"unknown value type {vtype!r}")
    if not recipients:
        raise IdentityError(f"environment {ctx.env!r} has no recipients", hint="run: sealer keys generate")
    kids = tuple(r.kid for r in recipients)
    header = vtype.encode() + sealed_at.to_bytes(5, "big") + hints(ctx)
    info = context_bytes(header, ctx, kids)
    if len(recipients) == 1:
        payload = recipients[0].seal(plaintext, info)
    else:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        key = os.urandom(_KEY_LEN)
        parts = []
        for r in recipients:
            stanza = r.seal(key, info)
            parts.append(len(stanza).to_bytes(2, "big") + stanza)
        stanzas = b"".join(parts)
        # The body's associated data covers every wrapped key too: a holder of one key detects an
        # edit to another recipient's stanza, so no byte of the token can change unnoticed.
        payload = stanzas + ChaCha20Poly1305(key).encrypt(_NONCE, plaintext, info + stanzas)
    return f"ENC[{VERSION},{'+'.join(kids)},{_b64(header + payload)}]"


def unseal(token: Token, ctx: Context, identity_for: Callable[[str], Identity | None], *, where: str) -> bytes:
    """Open a parsed token at `ctx`. `where` (file and path) goes into every error message."""
    index, identity = _pick_identity(token, identity_for, where)
    moved = mismatches(token, ctx)
    if moved:
        raise UnsealError(
            f"value at {format_path(ctx.path)} was sealed for a different {' and '.join(moved)}"
            f" (moved or copied from elsewhere, or the token was altered)",
            file=where,
            hint="seal the value again in its new place",
        )
    info = context_bytes(token.header, ctx, token.kids)
    try:
        if len(token.kids) == 1:
            return identity.open(token.payload, info)
        key, stanzas, body = _split_wrapped(token, index)
        opened_key = identity.open(key, info)
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        return ChaCha20Poly1305(opened_key).decrypt(_NONCE, body, info + stanzas)
    except (UnsealError, TokenError, ValueError):
        pass
    except Exception as exc:  # cryptography's InvalidTag and friends carry no secret, but no use either
        if type(exc).__name__ != "InvalidTag":
            raise
    raise UnsealError(
        f"value at {format_path(ctx.path)} does not open with key {identity.kid}"
        " (the token was altered, or its seal time, type or key list was edited)",
        file=where,
        hint="restore the file from git, or set the value again",
    )


def _pick_identity(token: Token, identity_for: Callable[[str], Identity | None], where: str) -> tuple[int, Identity]:
    for i, kid in enumerate(token.kids):
        identity = identity_for(kid)
        if identity is not None:
            return i, identity
    raise IdentityError(
        f"sealed to key {' and '.join(token.kids)}, and none of the identities given is for it",
        file=where,
        hint="pass --identity with that key's private key; sealer keys list shows its environment",
    )


def _split_wrapped(token: Token, index: int) -> tuple[bytes, bytes, bytes]:
    """(this recipient's wrapped key, all length-prefixed stanzas as they are, the body)."""
    rest = token.payload
    stanzas = []
    for _ in token.kids:
        if len(rest) < 2:
            raise TokenError("malformed sealed token: truncated")
        n = int.from_bytes(rest[:2], "big")
        if len(rest) < 2 + n:
            raise TokenError("malformed sealed token: truncated")
        stanzas.append(rest[2 : 2 + n])
        rest = rest[2 + n :]
    return stanzas[index], token.payload[: len(token.payload) - len(rest)], rest


def mismatches(token: Token, ctx: Context) -> list[str]:
    """Names of the context parts whose hint differs from where the token now sits."""
    want = hints(ctx)
    names = ("environment", "scope", "namespace", "name")
    out = [names[i] for i in range(4) if want[i] != token.hints[i]]
    if want[4:6] != token.hints[4:6]:
        out.append("path")
    return out


@functools.lru_cache(maxsize=4096)
def hints(ctx: Context) -> bytes:
    """Cached: opening and re-sealing a value need the same context's hints several times."""
    ns, name = ctx.bound()
    return (
        _hint(b"env", ctx.env.encode(), 1)
        + _hint(b"scope", ctx.scope.encode(), 1)
        + _hint(b"namespace", ns.encode(), 1)
        + _hint(b"name", name.encode(), 1)
        + _hint(b"path", encode_path(ctx.path), 2)
    )


def _hint(label: bytes, value: bytes, n: int) -> bytes:
    return hashlib.sha256(b"sealer.v1 hint " + label + b"\x00" + value).digest()[:n]


def context_bytes(header: bytes, ctx: Context, kids: Sequence[str]) -> bytes:
    """The exact bytes used as HPKE info and AEAD associated data (docs/format.md § Context)."""
    ns, name = ctx.bound()
    return b"".join(
        (
            b"sealer.v1\x00",
            header,
            _lp(ctx.env.encode()),
            _lp(ctx.scope.encode()),
            _lp(ns.encode()),
            _lp(name.encode()),
            _lp(encode_path(ctx.path)),
            _lp("+".join(kids).encode()),
        )
    )


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
