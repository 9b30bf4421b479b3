"""The age v1 file format, bytes only: the version line, recipient stanzas, the MAC line, the strict
unpadded base64 of the header and the ASCII armor (C2SP `age.md`).

Why a module of its own (Go age's `internal/format` and `armor`): parsing and writing the header
and armor is where an age implementation must be strictest (one encoding per file, every malformed
line refused with a header or armor error), and it involves no key at all. Recipients build on
`Stanza`; encrypt and decrypt frame the payload with `marshal_stanza` and `parse_header`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from ._errors import AgeArmorError, AgeError, AgeHeaderError

VERSION_LINE: Final = b"age-encryption.org/v1\n"
ARMOR_BEGIN: Final = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END: Final = "-----END AGE ENCRYPTED FILE-----"

_COLUMNS: Final = 64  # base64 characters per line, header bodies and armor alike
_BYTES_PER_LINE: Final = _COLUMNS // 4 * 3
_MAX_ARMOR_WHITESPACE: Final = 1024


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of the header: `-> type args…` and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes


# --- base64 ----------------------------------------------------------------------------------------


def encode_b64(data: bytes) -> str:
    """Unpadded standard base64, as the header uses."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def decode_b64(text: str, what: str) -> bytes:
    """Strict unpadded base64: no padding, no line breaks, canonical (re-encoding gives the same text)."""
    if "=" in text or "\r" in text or "\n" in text or len(text) % 4 == 1:
        raise AgeHeaderError(f"malformed {what}: not canonical unpadded base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AgeHeaderError(f"malformed {what}: not base64") from None
    if encode_b64(data) != text:
        raise AgeHeaderError(f"malformed {what}: not canonical unpadded base64")
    return data


def _wrap_b64(data: bytes) -> list[str]:
    """Unpadded base64 in 64-column lines; the last line is always shorter than 64 (maybe empty)."""
    text = encode_b64(data)
    lines = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    if not lines or len(lines[-1]) == _COLUMNS:
        lines.append("")
    return lines


# --- header ----------------------------------------------------------------------------------------


@dataclass
class Header:
    stanzas: list[Stanza]
    mac: bytes
    mac_input: bytes  # the header bytes up to and including "---"
    payload_offset: int


def _read_line(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise AgeHeaderError(f"truncated header: {what} does not end with a line feed")
    return data[pos:end], end + 1


def _is_vchar_text(value: bytes) -> bool:
    return bool(value) and all(33 <= c <= 126 for c in value)


def parse_header(data: bytes) -> Header:
    """The header of a binary age file: its stanzas, its MAC and where the payload starts."""
    if not data:
        raise AgeHeaderError("empty file: not an age file")
    if not data.startswith(b"age-encryption.org/"):
        raise AgeHeaderError("not an age file (no age-encryption.org/ version line)")
    line, pos = _read_line(data, 0, "the version line")
    if line.endswith(b"\r"):
        raise AgeHeaderError("malformed header: CRLF line endings (age headers use LF only)")
    if line + b"\n" != VERSION_LINE:
        raise AgeHeaderError("unsupported age format version (only age-encryption.org/v1 is known)")
    stanzas: list[Stanza] = []
    while True:
        if data.startswith(b"---", pos):
            mac_input = data[: pos + 3]
            line, end = _read_line(data, pos, "the MAC line")
            parts = line.split(b" ")
            if parts[0] != b"---" or len(parts) != 2:
                raise AgeHeaderError("malformed header MAC line")
            mac = decode_b64(parts[1].decode("ascii", "replace"), "header MAC")
            if len(mac) != 32:
                raise AgeHeaderError("malformed header MAC line: the MAC is not 32 bytes")
            if not stanzas:
                raise AgeHeaderError("the header has no recipient stanza")
            return Header(stanzas, mac, mac_input, end)
        if pos + 3 > len(data):
            raise AgeHeaderError("truncated header: no MAC line")
        line, pos = _read_line(data, pos, "a stanza line")
        parts = line.split(b" ")
        if parts[0] != b"->" or len(parts) < 2:
            raise AgeHeaderError("malformed stanza: expected a line '-> TYPE [ARGS…]'")
        if not all(_is_vchar_text(p) for p in parts[1:]):
            raise AgeHeaderError("malformed stanza: arguments must be non-empty printable ASCII")
        args = [p.decode("ascii") for p in parts[1:]]
        body = bytearray()
        while True:
            line, pos = _read_line(data, pos, "a stanza body line")
            try:
                text = line.decode("ascii")
            except UnicodeDecodeError:
                raise AgeHeaderError("malformed stanza body: not base64") from None
            if len(text) > _COLUMNS:
                raise AgeHeaderError("malformed stanza body: a line is longer than 64 columns")
            chunk = decode_b64(text, "stanza body")
            body += chunk
            if len(chunk) < _BYTES_PER_LINE:
                break  # a stanza ends with its first short line (which may be empty)
        stanzas.append(Stanza(args[0], tuple(args[1:]), bytes(body)))


def marshal_stanza(stanza: Stanza) -> bytes:
    """A stanza as the header carries it: the `->` line, then the body in 64-column lines."""
    for part in (stanza.type, *stanza.args):
        if not _is_vchar_text(part.encode("utf-8")):
            raise AgeError("stanza arguments must be non-empty printable ASCII")
    head = " ".join(("->", stanza.type, *stanza.args))
    return (head + "\n" + "".join(line + "\n" for line in _wrap_b64(stanza.body))).encode("ascii")


# --- armor -----------------------------------------------------------------------------------------


def is_armored(data: bytes) -> bool:
    """True for text that starts (after whitespace) with a PEM BEGIN line: what the CLI looks for."""
    return data.lstrip(b" \t\r\n").startswith(b"-----BEGIN")


def is_age_file(data: bytes) -> bool:
    """True for a binary age file or an armored one (cheap sniffing, nothing is verified)."""
    return data.startswith(b"age-encryption.org/") or data.lstrip(b" \t\r\n").startswith(ARMOR_BEGIN.encode())


def armor(data: bytes) -> bytes:
    """Strict PEM armor as age writes it: padded base64 in 64-column lines, no headers, LF endings."""
    text = base64.b64encode(data).decode("ascii")
    lines = [ARMOR_BEGIN, *(text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)), ARMOR_END]
    return ("\n".join(lines) + "\n").encode("ascii")


def dearmor(data: bytes) -> bytes:
    """Decode age's armor strictly, so that an armored file has exactly one encoding.

    Allowed: whitespace before and after the block, LF or CRLF line ends, a missing final newline.
    Refused: anything else outside the block, headers, empty or over-long lines, a short line that is
    not the last, missing or misplaced padding, non-canonical base64.
    """
    lines = data.split(b"\n")
    skipped = 0
    i = 0
    while i < len(lines) and not lines[i].strip(b" \t\r\n\v\f"):
        skipped += len(lines[i]) + 1
        if skipped > _MAX_ARMOR_WHITESPACE:
            raise AgeArmorError("too much whitespace before the armor")
        i += 1
    if i == len(lines):
        raise AgeArmorError("no armor: the input is empty or blank")

    def line_at(k: int) -> bytes:
        line = lines[k]
        return line[:-1] if line.endswith(b"\r") else line

    if line_at(i) != ARMOR_BEGIN.encode():
        raise AgeArmorError(f"the armor does not start with {ARMOR_BEGIN}")
    i += 1
    body: list[bytes] = []
    while True:
        if i >= len(lines):
            raise AgeArmorError(f"the armor has no {ARMOR_END} line")
        line = line_at(i)
        i += 1
        if line == ARMOR_END.encode():
            break
        if body and len(body[-1]) != _COLUMNS:
            raise AgeArmorError("malformed armor: a short line before the last one")
        if not line or len(line) > _COLUMNS:
            raise AgeArmorError("malformed armor: every line holds 1 to 64 base64 characters")
        body.append(line)
    rest = b"\n".join(lines[i:])
    if rest.strip(b" \t\r\n\v\f"):
        raise AgeArmorError("data after the armor's END line")
    if len(rest) >= _MAX_ARMOR_WHITESPACE:
        raise AgeArmorError("too much whitespace after the armor")
    text = b"".join(body)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AgeArmorError("malformed armor: not padded base64") from None
    if base64.b64encode(decoded) != text:
        raise AgeArmorError("malformed armor: the base64 is not canonical")
    return decoded
