"""Seal and unseal one value, bound to where it lives.

A token is `ENC[sealer.v1,<kid>[+<kid>…],<blob>]` (grammar and exact bytes: docs/format.md).
The blob is a header (type, seal time, optional expiry, context hints) followed by HPKE output:
sealed directly to the single recipient, or, with several recipients, a random data key wrapped to
each one and the value under ChaCha20-Poly1305. Everything the token claims (header, kids) and everything its place
implies (environment, scope, path) goes into the HPKE `info` and the AEAD associated data, so an
edited byte or a moved value does not open. The hints only let the error say *what* moved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ._format import (
    Context,
    Token,
    context_bytes,
    encode_token,
    format_path,
    hints,
    make_header,
    mismatches,
    value_problem,
)
from ._keys import Identity, Recipient
from .errors import IdentityError, TokenError, UnsealError

_KEY_LEN = 32
_NONCE = bytes(12)  # each data key seals exactly one message


def seal(
    vtype: str,
    plaintext: bytes,
    ctx: Context,
    recipients: Sequence[Recipient],
    *,
    sealed_at: int,
    expires_at: int | None = None,
) -> str:
    """Seal one value to every recipient. Callers pass the environment's current recipient list.
    `expires_at` (Unix seconds, after `sealed_at`) goes into the header, so the context binds it."""
    bad = value_problem(vtype, plaintext)
    if bad is not None:
        raise ValueError(f"plaintext {bad}")  # callers validate first and say which value
    if not recipients:
        raise IdentityError(f"environment {ctx.env!r} has no recipients", hint="run: sealer keys generate")
    kids = tuple(r.kid for r in recipients)
    header = make_header(vtype, sealed_at, hints(ctx), expires_at)
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
    return encode_token(kids, header, payload)


def unseal(token: Token, ctx: Context, identity_for: Callable[[str], Identity | None], *, where: str) -> bytes:
    """Open a parsed token at `ctx`. `where` (file and path) goes into every error message."""
    index, identity = _pick_identity(token, identity_for, where)
    moved = mismatches(token, ctx)
    if moved:
        # The hints are header bytes: a value sealed right here whose hint byte was edited opens
        # with the hints this place implies. Then it was altered, not moved. (Its plaintext is
        # dropped: an edited token never yields a value.)
        here = token.header[: len(token.header) - len(token.hints)] + hints(ctx)
        if _open(token, index, identity, context_bytes(here, ctx, token.kids)) is not None:
            raise UnsealError(
                f"value at {format_path(ctx.path)}: its token was altered (a context hint byte of its header"
                " was edited), so it does not open",
                file=where,
                hint="restore the file from git, or set the value again",
            )
        raise UnsealError(
            f"value at {format_path(ctx.path)} was sealed for a different {' and '.join(moved)}"
            " (moved or copied from elsewhere), or the token was altered; it does not open",
            file=where,
            hint="seal the value again in its new place, or restore the file from git",
        )
    data = _open(token, index, identity, context_bytes(token.header, ctx, token.kids))
    if data is not None:
        bad = value_problem(token.vtype, data)
        if bad is None:
            return data
        raise UnsealError(
            f"value at {format_path(ctx.path)} opened, but its plaintext {bad}",
            file=where,
            hint="it was sealed by other software or crafted to break the document; set the value again",
        )
    raise UnsealError(
        f"value at {format_path(ctx.path)} does not open with key {identity.kid}"
        " (the token was altered, or its seal time, expiry, type or key list was edited)",
        file=where,
        hint="restore the file from git, or set the value again",
    )


def _open(token: Token, index: int, identity: Identity, info: bytes) -> bytes | None:
    try:
        if len(token.kids) == 1:
            return identity.open(token.payload, info)
        key, stanzas, body = _split_wrapped(token, index)
        opened_key = identity.open(key, info)
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        return ChaCha20Poly1305(opened_key).decrypt(_NONCE, body, info + stanzas)
    except (UnsealError, TokenError, ValueError):
        return None
    except Exception as exc:  # cryptography's InvalidTag and friends carry no secret, but no use either
        if type(exc).__name__ != "InvalidTag":
            raise
        return None


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
