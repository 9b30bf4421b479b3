"""The tree as sops holds it (ordered mappings, comments, Go timestamps), the text Go gives its
values, the walk over a tree's leaves, and the rule that says which leaves are encrypted."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from ._errors import SopsFormatError, SopsUnsupportedError

RULES: Final = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
DEFAULT_UNENCRYPTED_SUFFIX: Final = "_unencrypted"
INT64: Final = (-(2**63), 2**63 - 1)
GO_BOOLS: Final = {  # strconv.ParseBool
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
INT_RE: Final = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Comment:
    """A comment line (text after '#', leading space kept). Inline comments follow a value on its line."""

    text: str
    inline: bool = False


class Branch(list[tuple[Any, Any]]):
    """A mapping as sops holds it: ordered (key, value) items; a Comment key (value None) is a comment."""


class Uint64(int):
    """An integer that go-yaml decodes as uint64, a type sops cannot walk."""


@dataclass(frozen=True)
class GoTime:
    """A timestamp, kept as Go's `time.MarshalText` writes it (RFC 3339, nanoseconds): those are the
    bytes sops puts into the MAC, and a Python datetime cannot hold nanoseconds."""

    text: str

    def to_datetime(self) -> datetime:
        m = _RFC3339_RE.fullmatch(self.text)
        assert m is not None
        frac = (m["frac"] or "")[:7]  # datetime holds microseconds: "." and 6 digits
        zone = "+00:00" if m["zone"] in ("Z", "z") else m["zone"]
        return datetime.fromisoformat(f"{m['date']}T{m['time']}{frac}{zone}")

    @classmethod
    def from_datetime(cls, value: datetime | date) -> GoTime:
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        offset = value.utcoffset() or timedelta(0)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return cls(text + _zone_text(offset))


_RFC3339_RE: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


def _zone_text(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    sign = "+" if seconds > 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


def go_time(text: str, *, seconds_only: bool = False) -> GoTime | None:
    """Parse RFC 3339 as Go does and return Go's canonical text (None if it is not a valid time)."""
    m = _RFC3339_RE.fullmatch(text)
    if m is None:
        return None
    return make_time(m["date"], m["time"], m["frac"] or "", m["zone"], seconds_only=seconds_only)


def make_time(day: str, clock: str, frac: str, zone: str | None, *, seconds_only: bool = False) -> GoTime | None:
    try:
        y, mo, d = (int(x) for x in day.split("-"))
        h, mi, s = (int(x) for x in clock.split(":"))
        datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    offset = timedelta(0)
    if zone not in (None, "Z", "z"):
        assert zone is not None
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    digits = "" if seconds_only else frac[1:10].rstrip("0")
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}" + (f".{digits}" if digits else "")
    return GoTime(text + _zone_text(offset))


def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_bytes(value: Any) -> bytes:
    """sops's ToBytes: the plaintext bytes a value contributes to the MAC (and is encrypted as)."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, Uint64):
        raise SopsUnsupportedError("an integer does not fit in a signed 64-bit int (sops cannot hold it)")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return go_float(value).encode("ascii")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        return value
    if isinstance(value, GoTime):
        return value.text.encode("ascii")
    if isinstance(value, Comment):
        return value.text.encode("utf-8", "surrogateescape")
    raise SopsUnsupportedError(f"cannot store a value of type {type(value).__name__}")


def check_utf8(text: str) -> None:
    """Clear text in the file must be UTF-8: sops's YAML and JSON readers refuse anything else."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise SopsUnsupportedError(
            "a key, comment or clear value is not UTF-8 text",
            hint="keep bytes in a binary-store SOPS file (sops encrypt --input-type binary): it imports as a Secret",
        )


def fmt_path(path: Sequence[str]) -> str:
    return ".".join(path) if path else "(top level)"


def heads(collection: Branch | list[Any]) -> list[Any]:
    """What each entry starts with: a mapping's keys, a list's items (a Comment there is a comment)."""
    return [key for key, _ in collection] if isinstance(collection, Branch) else list(collection)


def has_items(collection: Branch | list[Any]) -> bool:
    return any(not isinstance(head, Comment) for head in heads(collection))


def plain(value: Any, *, datetimes: bool = False) -> Any:
    """A Branch tree as plain dicts and lists, comments dropped; timestamps as datetimes if asked."""
    if isinstance(value, Branch):
        return {k: plain(v, datetimes=datetimes) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [plain(v, datetimes=datetimes) for v in value if not isinstance(v, Comment)]
    if datetimes and isinstance(value, GoTime):
        return value.to_datetime()
    return value


# --- the walk over the leaves, and which of them are encrypted (sops.go: shouldBeEncrypted) --------

OnLeaf = Callable[[Any, list[str], list[tuple[str, ...]]], Any]
"""Called with a leaf (a scalar or a Comment), its path of mapping keys and the comments above it."""


def walk_document(branch: Branch, on_leaf: OnLeaf) -> Branch:
    """A copy of a document with every leaf replaced by `on_leaf(leaf, path, comment stack)`."""
    result = _walk_collection(branch, [], [], on_leaf)
    assert isinstance(result, Branch)
    return result


def _walk_value(value: Any, path: list[str], stack: list[tuple[str, ...]], on_leaf: OnLeaf) -> Any:
    if isinstance(value, list):
        return _walk_collection(value, path, stack, on_leaf)
    if value is None:
        return None  # nulls are neither encrypted nor in the MAC
    return on_leaf(value, path, stack)


def _walk_collection(
    collection: Branch | list[Any], path: list[str], stack: list[tuple[str, ...]], on_leaf: OnLeaf
) -> Branch | list[Any]:
    stack = [*stack, ()]
    is_map = isinstance(collection, Branch)
    out: list[Any] = Branch() if is_map else []
    for entry in collection:
        head = entry[0] if is_map else entry
        if isinstance(head, Comment):
            stack[-1] = (*stack[-1], head.text)
            leaf = on_leaf(head, path, stack)
            out.append((leaf, None) if is_map else leaf)
            continue
        if not is_map:
            out.append(_walk_value(entry, path, stack, on_leaf))
        elif isinstance(head, str):
            out.append((head, _walk_value(entry[1], [*path, head], stack, on_leaf)))
        else:
            raise SopsFormatError(f"{fmt_path(path)} has a key of type {type(head).__name__}: only string keys")
        stack[-1] = ()
    return out


@dataclass(frozen=True)
class Rule:
    """The file's one encryption rule (sops's default: unencrypted_suffix _unencrypted)."""

    name: str
    value: str
    pattern: re.Pattern[str] | None

    @classmethod
    def make(cls, name: str, value: str) -> Rule:
        if name not in RULES:
            raise SopsFormatError(f"unknown encryption rule {name}")
        pattern = None
        if name.endswith("_regex"):
            try:
                pattern = re.compile(value)
            except re.error:
                raise SopsUnsupportedError(
                    f"the {name} {value!r} is not a regular expression Python can evaluate",
                    hint="sops uses Go RE2 syntax; rewrite it in the common subset",
                ) from None
        return cls(name, value, pattern)

    def encrypts(self, path: Sequence[str], stack: Sequence[Sequence[str]], is_comment: bool) -> bool:
        name, value = self.name, self.value
        if name == "unencrypted_suffix":
            return not any(p.endswith(value) for p in path)
        if name == "encrypted_suffix":
            return any(p.endswith(value) for p in path)
        assert self.pattern is not None
        if name == "unencrypted_regex":
            return not any(self.pattern.search(p) for p in path)
        if name == "encrypted_regex":
            return any(self.pattern.search(p) for p in path)
        if name == "unencrypted_comment_regex":
            return not any(self.pattern.search(c) for cs in stack for c in cs)
        # encrypted_comment_regex: the comment line that matches is itself left in clear.
        last = len(stack) - 1
        for i, cs in enumerate(stack):
            for j, c in enumerate(cs):
                if is_comment and i == last and j == len(stack[last]) - 1:
                    continue
                if self.pattern.search(c):
                    return True
        return False
