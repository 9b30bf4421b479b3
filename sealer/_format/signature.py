"""The bytes a document's signature covers (docs/format.md § 6), laid out over a neutral tree.

Reading YAML (which scalar is plain, quoted or tagged, its resolved tag, aliases expanded) is
sealer._signing's job. This module only turns the tree into bytes, so an independent verifier
can check it against the spec line by line. The tree:

- a scalar: `("s", tag, value, style)`, style one of `PLAIN`, `QUOTED`, `TAGGED`;
- a sequence: `("l", tag, [node, ...])`, in order;
- a mapping: `("m", tag, [(key node, value node), ...])`, in any order (entries are sorted here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .context import lp

DOMAIN = b"sealer.sig.v2\x00"
DOMAIN_V1 = b"sealer.sig.v1\x00"  # the old message: recognised only to say "sign it again"

PLAIN = "p"  # a plain scalar without a tag property: its type comes from its text
QUOTED = "q"  # a single- or double-quoted or block scalar without a tag property: a string
TAGGED = "t"  # a scalar with a tag property (`!!str off`, `!custom x`)
STYLES = (PLAIN, QUOTED, TAGGED)

Scalar: TypeAlias = tuple[Literal["s"], str, str, str]
Seq: TypeAlias = "tuple[Literal['l'], str, Sequence[Node]]"
Map: TypeAlias = "tuple[Literal['m'], str, Sequence[tuple[Node, Node]]]"
Node: TypeAlias = "Scalar | Seq | Map"


@dataclass(frozen=True)
class Header:
    """Everything of a signature's message that is not the document's content."""

    signer: str  # the signer's name in the environment's registry
    key: str  # the signer key id (16 hex digits)
    version: int  # the sealer: block's format version
    env: str
    scope: str
    path: str  # the file's repository-relative POSIX path (docs/format.md § 6)


def message(header: Header, body: Map) -> bytes:
    """`sealer.sig.v2` ‖ 0x00 ‖ the header fields, each lp() ‖ node(body)."""
    return b"".join((DOMAIN, *_header_fields(header), lp(header.path.encode()), node_bytes(body)))


def _header_fields(header: Header) -> tuple[bytes, ...]:
    """signer, key, version, env and scope, each lp(): the header both message versions start with."""
    return (
        lp(header.signer.encode()),
        lp(header.key.encode("ascii")),
        lp(str(header.version).encode("ascii")),
        lp(header.env.encode()),
        lp(header.scope.encode()),
    )


def node_bytes(node: Node) -> bytes:
    if node[0] == "s":
        _, tag, value, style = node
        if style not in STYLES:
            raise ValueError(f"unknown scalar style {style!r}")
        return b"s" + style.encode("ascii") + lp(tag.encode()) + lp(value.encode())
    if node[0] == "l":
        _, tag, items = node
        return b"l" + lp(tag.encode()) + _u32(len(items)) + b"".join(node_bytes(i) for i in items)
    _, tag, entries = node
    encoded = sorted(node_bytes(k) + node_bytes(v) for k, v in entries)
    return b"m" + lp(tag.encode()) + _u32(len(encoded)) + b"".join(encoded)


def message_v1(header: Header, body: Map) -> bytes:
    """The old `sealer.sig.v1` message: no path, no scalar style, no collection tags. Never
    accepted as a signature; recognised so that the error can say to sign again."""
    return b"".join((DOMAIN_V1, *_header_fields(header), _v1(body)))


def _v1(node: Node) -> bytes:
    if node[0] == "s":
        return b"s" + lp(node[1].encode()) + lp(node[2].encode())
    if node[0] == "l":
        return b"l" + _u32(len(node[2])) + b"".join(_v1(i) for i in node[2])
    encoded = sorted(_v1(k) + _v1(v) for k, v in node[2])
    return b"m" + _u32(len(encoded)) + b"".join(encoded)


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")
