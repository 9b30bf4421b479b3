"""The bytes a value is bound to (docs/format.md § 3) and the hints that name what moved."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .token import Token
from .valuepath import Path, encode_path


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


def context_bytes(header: bytes, ctx: Context, kids: Sequence[str]) -> bytes:
    """The exact bytes used as HPKE info and AEAD associated data."""
    ns, name = ctx.bound()
    return b"".join(
        (
            b"sealer.v1\x00",
            header,
            lp(ctx.env.encode()),
            lp(ctx.scope.encode()),
            lp(ns.encode()),
            lp(name.encode()),
            lp(encode_path(ctx.path)),
            lp("+".join(kids).encode()),
        )
    )


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


def mismatches(token: Token, ctx: Context) -> list[str]:
    """Names of the context parts whose hint differs from where the token now sits."""
    want = hints(ctx)
    names = ("environment", "scope", "namespace", "name")
    out = [names[i] for i in range(4) if want[i] != token.hints[i]]
    if want[4:6] != token.hints[4:6]:
        out.append("path")
    return out


def _hint(label: bytes, value: bytes, n: int) -> bytes:
    return hashlib.sha256(b"sealer.v1 hint " + label + b"\x00" + value).digest()[:n]


def lp(b: bytes) -> bytes:
    """u32 length prefix, as every length-prefixed field of the format."""
    return len(b).to_bytes(4, "big") + b
