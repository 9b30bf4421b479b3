"""Value paths: how a person names a value (`stringData.password`, `data["tls.crt"]`, `items[0]`).

One syntax for display, for `sealer set` and for error messages, so what an error prints can be pasted
back into a command. Grammar (docs/format.md):

    path    = segment *( "." key / "[" index "]" / "[" quoted "]" )
    segment = key / "[" index "]" / "[" quoted "]"
    key     = 1*( ALPHA / DIGIT / "_" / "-" )
    quoted  = a JSON string literal (double quotes, JSON escapes)
"""

from __future__ import annotations

import json
import re

from .errors import PathError

Segment = str | int
Path = tuple[Segment, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


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


def parse_path(text: str) -> Path:
    segs: list[Segment] = []
    i, n = 0, len(text)
    if not text:
        raise PathError("empty value path", hint='write it like stringData.password or data["tls.crt"]')
    while i < n:
        c = text[i]
        if c == ".":
            if not segs:
                raise PathError(f"value path {text!r} starts with '.'")
            i += 1
            m = _BARE.match(text, i)
            if not m:
                raise PathError(
                    f"value path {text!r}: expected a key after '.' at column {i + 1}",
                    hint='quote keys with other characters: data["tls.crt"]',
                )
            segs.append(m.group())
            i = m.end()
        elif c == "[":
            if text.startswith('["', i):
                try:
                    key, end = json.JSONDecoder().raw_decode(text, i + 1)
                except json.JSONDecodeError:
                    raise PathError(f"value path {text!r}: bad quoted key at column {i + 1}") from None
                if not isinstance(key, str) or text[end : end + 1] != "]":
                    raise PathError(f"value path {text!r}: expected '\"]' at column {end + 1}")
                segs.append(key)
                i = end + 1
            else:
                m = re.compile(r"\[(0|[1-9][0-9]*)\]").match(text, i)
                if not m:
                    raise PathError(f'value path {text!r}: expected [N] or ["key"] at column {i + 1}')
                segs.append(int(m.group(1)))
                i = m.end()
        elif not segs:
            m = _BARE.match(text, i)
            if not m:
                raise PathError(
                    f"value path {text!r}: unexpected {c!r} at column {i + 1}",
                    hint='quote keys with other characters: data["tls.crt"]',
                )
            segs.append(m.group())
            i = m.end()
        else:
            raise PathError(
                f"value path {text!r}: unexpected {c!r} at column {i + 1}",
                hint='quote keys with other characters: data["tls.crt"]',
            )
    return tuple(segs)


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
