"""Value paths: how a person names a value (`stringData.password`, `data["tls.crt"]`, `items[0]`).

One syntax for display, for `sealer set` and for error messages, so what an error prints can be pasted
back into a command. Grammar (docs/format.md):

    path    = segment *( "." key / "[" index "]" / "[" quoted "]" )
    segment = key / "[" index "]" / "[" quoted "]"
    key     = 1*( ALPHA / DIGIT / "_" / "-" )
    quoted  = a JSON string literal (double quotes, JSON escapes)
"""

from __future__ import annotations

import functools
import json
import re

from ..errors import PathError

Segment = str | int
Path = tuple[Segment, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")  # keys written without quotes


def format_path(path: Path) -> str:
    out: list[str] = []
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _BARE.fullmatch(seg):
            out.append(f".{seg}" if out else seg)
        else:
            out.append(f"[{json.dumps(seg, ensure_ascii=False)}]")
    return "".join(out)


_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DOT_KEY = re.compile(r"\.([A-Za-z0-9_-]+)")
_INDEX = re.compile(r"\[(0|[1-9][0-9]*)\]")
_HINT = 'write it like stringData.password, data["tls.crt"] or items[0].token'


def parse_path(text: str) -> Path:
    if not text:
        raise PathError("empty value path", hint=_HINT)
    segs: list[Segment] = []
    i = 0
    while i < len(text):
        if text.startswith('["', i):
            try:
                key, end = json.JSONDecoder().raw_decode(text, i + 1)
            except json.JSONDecodeError:
                raise PathError(f"value path {text!r}: bad quoted key at column {i + 1}", hint=_HINT) from None
            if not isinstance(key, str) or text[end : end + 1] != "]":
                raise PathError(f"value path {text!r}: expected '\"]' at column {end + 1}", hint=_HINT)
            segs.append(key)
            i = end + 1
        elif m := _INDEX.match(text, i):
            segs.append(int(m.group(1)))
            i = m.end()
        elif m := (_DOT_KEY if segs else _KEY).match(text, i):
            segs.append(m.group(m.re.groups))
            i = m.end()
        else:
            raise PathError(f"value path {text!r}: unexpected {text[i]!r} at column {i + 1}", hint=_HINT)
    return tuple(segs)


@functools.lru_cache(maxsize=4096)
def encode_path(path: Path) -> bytes:
    """Unambiguous bytes for the sealing context: each key or index tagged and length-prefixed."""
    out = bytearray()
    for seg in path:
        if isinstance(seg, int):
            out += b"i" + seg.to_bytes(4, "big")
        else:
            raw = seg.encode("utf-8")
            out += b"k" + len(raw).to_bytes(4, "big") + raw
    return bytes(out)
