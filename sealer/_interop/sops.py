"""SOPS files with age recipients (getsops/sops 3.x): read them, every value and the MAC checked, and
write YAML and JSON files that sops reads back.

Why: teams hold SOPS files today; `sealer import sops` and `sealer export sops` move them in both
directions, so the format must be sops's own to the byte where it matters (value syntax, AAD, type
tags, MAC, metadata), not an approximation. The facts come from sops's source (read, not copied) and
are summed up in `shared/interop/sops/FORMAT.md`:

- one random 32-byte data key per file, wrapped for every age recipient as an armored age file
  (our `interop.age` opens and writes those);
- every selected leaf is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: AES-256-GCM with a 32-byte IV,
  the AAD being the mapping keys from the root joined with ":" plus a trailing ":" (list indices are
  not part of it); comments are encrypted the same way with the path of the collection they sit in;
- the MAC is SHA-512 over the typed plaintext of the values in file order, upper-case hex, stored
  encrypted with the `lastmodified` time as AAD.

Stores: YAML (go-yaml v3 scalar resolution, reproduced here so unencrypted values hash as sops hashes
them), JSON, dotenv, INI and binary are read; YAML and JSON are written, in the sops 3.13 layout.
Only age master keys are used; files wrapped only for KMS, PGP, GCP KMS, Azure Key Vault, Vault or
HuaweiCloud KMS are refused by name, and so are Shamir key groups.

Errors are typed, one line each, and never carry key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
import math
import os
import re
import shlex
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._keys import Identity, Recipient
from ..errors import IdentityError, InputError, KeyFormatError, SealerError
from . import age

__all__ = [
    "DEFAULT_UNENCRYPTED_SUFFIX",
    "FORMATS",
    "RULES",
    "SOPS_VERSION",
    "AgeKey",
    "Branch",
    "Comment",
    "GoTime",
    "SopsError",
    "SopsFile",
    "SopsFormatError",
    "SopsMACError",
    "SopsMetadata",
    "SopsNoKeyError",
    "SopsUnsupportedError",
    "SopsValueError",
    "format_for_path",
    "read",
    "read_file",
    "sops_identities",
    "suggested_rule",
    "write",
    "write_text",
]

SOPS_VERSION: Final = "3.13.2"
"""The `version` we write: the sops release whose file layout this writer reproduces (valid semver,
which every sops command requires)."""

FORMATS: Final = ("yaml", "json", "dotenv", "ini", "binary")
RULES: Final = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
DEFAULT_UNENCRYPTED_SUFFIX: Final = "_unencrypted"
MAX_FILE_BYTES: Final = 8 * 1024 * 1024
MAX_NODES: Final = 200_000  # values once YAML aliases are expanded: an alias bomb fails, it does not eat memory
KEY_COMMAND_TIMEOUT: Final = 30.0
MAX_KEY_SOURCE_BYTES: Final = 1 << 20

_KEY_TYPE_NAMES: Final = {
    "age": "age",
    "pgp": "PGP",
    "kms": "AWS KMS",
    "gcp_kms": "GCP KMS",
    "azure_kv": "Azure Key Vault",
    "hc_vault": "HashiCorp Vault",
    "hckms": "HuaweiCloud KMS",
}
_MAC_ONLY_ENCRYPTED_INIT: Final = hashlib.sha256(b"sops").digest()
_NONCE_SIZE: Final = 32
_ENC_RE: Final = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_INT64: Final = (-(2**63), 2**63 - 1)


# --- errors ----------------------------------------------------------------------------------------


class SopsError(SealerError):
    """Base class: a SOPS file could not be read or written."""


class SopsFormatError(SopsError):
    """Not a SOPS file, or its structure or metadata is malformed."""


class SopsValueError(SopsError):
    """An encrypted value is garbled or truncated, or does not decrypt at its place."""


class SopsMACError(SopsError):
    """The file's MAC does not match its values: something was added, removed, reordered or edited."""


class SopsNoKeyError(SopsError):
    """No age identity, or none of ours opens any of the file's age stanzas."""


class SopsUnsupportedError(SopsError):
    """The file needs something sealer does not do: non-age master keys only, Shamir key groups, …"""


# --- the tree, as sops holds it --------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    """A comment line (text after '#', leading space kept). Inline comments follow a value on its line."""

    text: str
    inline: bool = False


class Branch(list[tuple[Any, Any]]):
    """A mapping as sops holds it: ordered (key, value) items; a Comment key (value None) is a comment."""


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


def _go_time(text: str, *, seconds_only: bool = False) -> GoTime | None:
    """Parse RFC 3339 as Go does and return Go's canonical text (None if it is not a valid time)."""
    m = _RFC3339_RE.fullmatch(text)
    if m is None:
        return None
    return _make_time(m["date"], m["time"], m["frac"] or "", m["zone"], seconds_only=seconds_only)


def _make_time(day: str, clock: str, frac: str, zone: str | None, *, seconds_only: bool = False) -> GoTime | None:
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


def _go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _to_bytes(value: Any) -> bytes:
    """sops's ToBytes: the plaintext bytes a value contributes to the MAC (and is encrypted as)."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, _Uint64):
        raise SopsUnsupportedError("an integer does not fit in a signed 64-bit int (sops cannot hold it)")
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, float):
        return _go_float(value).encode("ascii")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        return value
    if isinstance(value, GoTime):
        return value.text.encode("ascii")
    if isinstance(value, Comment):
        return value.text.encode("utf-8", "surrogateescape")
    raise SopsUnsupportedError(f"cannot store a value of type {type(value).__name__}")


def _fmt_path(path: Sequence[str]) -> str:
    return ".".join(path) if path else "(top level)"


def _aad(path: Sequence[str]) -> str:
    return ":".join(path) + ":"


# --- go-yaml v3 scalar resolution ------------------------------------------------------------------

_YAML_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_TRUE: Final = frozenset({"true", "True", "TRUE"})
_YAML_FALSE: Final = frozenset({"false", "False", "FALSE"})
_YAML_SPECIAL_FLOATS: Final = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{p + s: math.inf for p in ("", "+") for s in (".inf", ".Inf", ".INF")},
    **{"-" + s: -math.inf for s in (".inf", ".Inf", ".INF")},
}
_YAML_FLOAT_RE: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_YAML_DOT_FLOAT_RE: Final = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_YAML_TS_RE: Final = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>\d{1,2}):(?P<M>\d{1,2}):(?P<S>\d{1,2})(?P<frac>[.,]\d+)?(?P<zone>Z|[+-]\d{2}:\d{2})?)?"
)
_OLD_BOOLS: Final = frozenset(
    {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"}
    | {"true", "True", "TRUE", "false", "False", "FALSE"}
)
_BASE60_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_DIGITS: Final = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


class _Uint64(int):
    """An integer that go-yaml decodes as uint64, a type sops cannot walk."""


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), then ParseUint (underscores already removed)."""
    body, sign = text, 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    value = sign * int(digits, base)
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if sign > 0 and text[:1] != "+" and value < 2**64:
        return _Uint64(value)
    return None


def _yaml_timestamp(text: str) -> GoTime | None:
    """go-yaml's timestamp forms: RFC 3339 with short fields (T or t), 'date time' (UTC), a date."""
    m = _YAML_TS_RE.fullmatch(text)
    if m is None:
        return None
    if m["sep"] is None:
        return _make_time(f"{m['y']}-{m['m']}-{m['d']}", "0:0:0", "", None)
    if (m["sep"] == " ") != (m["zone"] is None):
        return None  # a zone needs T, and the space form has none
    return _make_time(f"{m['y']}-{m['m']}-{m['d']}", f"{m['H']}:{m['M']}:{m['S']}", m["frac"] or "", m["zone"])


def _go_resolve(text: str) -> Any:
    """What go-yaml v3 (sops's YAML library) makes of a plain scalar."""
    if text in _YAML_NULLS:
        return None
    if text in _YAML_TRUE:
        return True
    if text in _YAML_FALSE:
        return False
    if text in _YAML_SPECIAL_FLOATS:
        return _YAML_SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        return float(text) if _YAML_DOT_FLOAT_RE.fullmatch(text) else text
    if first.isdigit() or first in "+-":
        if first.isdigit():
            stamp = _yaml_timestamp(text)
            if stamp is not None:
                return stamp
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT_RE.fullmatch(plain):
            return float(plain)
    return text


def _yaml_needs_quotes(text: str) -> bool:
    """A string that go-yaml (or a YAML 1.2 reader such as sealer's) would not read back as a string."""
    if not isinstance(_go_resolve(text), str):
        return True
    if text in _OLD_BOOLS or _BASE60_RE.fullmatch(text) or text == "<<":
        return True
    from ruamel.yaml.nodes import ScalarNode

    return str(_resolver().resolve(ScalarNode, text, (True, False))) != "tag:yaml.org,2002:str"


_RESOLVER: list[Any] = []


def _resolver() -> Any:
    if not _RESOLVER:
        from ruamel.yaml import YAML

        _RESOLVER.append(YAML(typ="safe", pure=True).resolver)
    return _RESOLVER[0]


# --- value encryption ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encrypt_value(value: Any, key: bytes, aad: str) -> Any:
    """sops's aes Cipher.Encrypt: returns the ENC[...] string ("" stays "", a comment stays one)."""
    if isinstance(value, Comment):
        if not value.text:
            return value
        return Comment(_encrypt_text(_to_bytes(value), "comment", key, aad), value.inline)
    if isinstance(value, bytes):  # sops turns []byte into a string before encrypting
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str) and not value:
        return ""
    if isinstance(value, bool):
        vtype = "bool"
    elif isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            where = aad[:-1].replace(":", ".") or "(top level)"
            raise SopsUnsupportedError(f"the integer at {where} does not fit in 64 bits")
        vtype = "int"
    elif isinstance(value, float):
        vtype = "float"
    elif isinstance(value, str):
        vtype = "str"
    elif isinstance(value, GoTime):
        vtype = "time"
    else:
        raise SopsUnsupportedError(f"cannot store a value of type {type(value).__name__}")
    return _encrypt_text(_to_bytes(value), vtype, key, aad)


def _encrypt_text(plain: bytes, vtype: str, key: bytes, aad: str) -> str:
    iv = os.urandom(_NONCE_SIZE)
    out = AESGCM(key).encrypt(iv, plain, aad.encode("utf-8", "surrogateescape"))
    return f"ENC[AES256_GCM,data:{_b64(out[:-16])},iv:{_b64(iv)},tag:{_b64(out[-16:])},type:{vtype}]"


def _decrypt_text(text: str, key: bytes, aad: str, where: str) -> tuple[bytes, str]:
    """Parse and open one ENC[...] value; returns (plaintext bytes, type tag)."""
    m = _ENC_RE.match(text)
    if m is None:
        raise SopsValueError(f"{where} is not an ENC[AES256_GCM,…] value (plaintext where sops expects ciphertext)")
    try:
        data, iv, tag = (base64.b64decode(g, validate=True) for g in m.group(1, 2, 3))
    except (binascii.Error, ValueError):
        raise SopsValueError(f"{where} is garbled: its data, iv or tag is not base64") from None
    if len(tag) != 16 or not 8 <= len(iv) <= 128:
        raise SopsValueError(f"{where} is garbled: wrong iv or tag length (truncated?)")
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode("utf-8", "surrogateescape"))
    except InvalidTag:
        raise SopsValueError(
            f"{where} does not decrypt: altered, truncated, moved from another key, or from another file"
        ) from None
    return plain, m.group(4)


_BOOLS: Final = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE: Final = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


def _typed(plain: bytes, vtype: str, where: str) -> Any:
    """Decode a decrypted value by its type tag, as sops's aes Cipher.Decrypt does."""
    if vtype == "bytes":
        return plain
    text = plain.decode("utf-8", "surrogateescape")
    if vtype == "str":
        return text
    if vtype == "comment":
        return Comment(text)
    if vtype == "int" and _INT_RE.fullmatch(text) and _INT64[0] <= int(text) <= _INT64[1]:
        return int(text)
    if vtype == "float" and _FLOAT_RE.fullmatch(text):
        return float(text)
    if vtype == "bool" and text in _BOOLS:
        return _BOOLS[text]
    if vtype == "time":
        stamp = _go_time(text)
        if stamp is not None:
            return stamp
    if vtype not in ("int", "float", "bool", "time"):
        raise SopsValueError(f"{where} has an unknown type tag {vtype!r}")
    raise SopsValueError(f"{where} does not hold a valid {vtype}")


# --- which values are encrypted (sops.go: shouldBeEncrypted) ---------------------------------------


@dataclass(frozen=True)
class _Rule:
    name: str
    value: str
    pattern: re.Pattern[str] | None

    @classmethod
    def make(cls, name: str, value: str) -> _Rule:
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


OnLeaf = Callable[[Any, list[str], list[tuple[str, ...]]], Any]


def _walk_value(value: Any, path: list[str], stack: list[tuple[str, ...]], on_leaf: OnLeaf) -> Any:
    if isinstance(value, Branch):
        return _walk_branch(value, path, stack, on_leaf)
    if isinstance(value, list):
        return _walk_list(value, path, stack, on_leaf)
    if value is None:
        return None  # nulls are neither encrypted nor in the MAC
    return on_leaf(value, path, stack)


def _walk_list(items: list[Any], path: list[str], stack: list[tuple[str, ...]], on_leaf: OnLeaf) -> list[Any]:
    stack = [*stack, ()]
    out: list[Any] = []
    for item in items:
        if isinstance(item, Comment):
            stack[-1] = (*stack[-1], item.text)
        out.append(_walk_value(item, path, stack, on_leaf))
        if not isinstance(item, Comment):
            stack[-1] = ()
    return out


def _walk_branch(branch: Branch, path: list[str], stack: list[tuple[str, ...]], on_leaf: OnLeaf) -> Branch:
    stack = [*stack, ()]
    out = Branch()
    for key, value in branch:
        if isinstance(key, Comment):
            stack[-1] = (*stack[-1], key.text)
            out.append((on_leaf(key, path, stack), None))
            continue
        if not isinstance(key, str):
            raise SopsFormatError(f"{_fmt_path(path)} has a key of type {type(key).__name__}: only string keys")
        out.append((key, _walk_value(value, [*path, key], stack, on_leaf)))
        stack[-1] = ()
    return out


# --- metadata --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeKey:
    """One age master key of a SOPS file: the recipient and the data key wrapped for it (armored)."""

    recipient: str
    enc: str


@dataclass
class SopsMetadata:
    """The `sops:` block, in both the 3.7 layout (every slot, struct order) and the 3.13 one."""

    version: str
    lastmodified: str
    mac: str
    rule: tuple[str, str]
    mac_only_encrypted: bool
    key_groups: list[dict[str, list[Any]]]
    shamir_threshold: int = 0

    @property
    def age_keys(self) -> list[AgeKey]:
        return [k for group in self.key_groups for k in group.get("age", [])]

    @property
    def key_types(self) -> list[str]:
        """Human names of the master-key types present, e.g. ["AWS KMS", "PGP"]."""
        seen = {t for group in self.key_groups for t, keys in group.items() if keys}
        return [name for t, name in _KEY_TYPE_NAMES.items() if t in seen]


def _plain(value: Any) -> Any:
    """A Branch tree as plain dicts and lists, comments dropped."""
    if isinstance(value, Branch):
        return {k: _plain(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, Comment)]
    return value


def _weak_str(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return _go_float(value) if isinstance(value, float) else str(value)
    raise SopsFormatError(f"sops metadata: {name} is not a string")


def _weak_bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value in _BOOLS:
        return _BOOLS[value]
    if isinstance(value, str) and not value:
        return False
    raise SopsFormatError(f"sops metadata: {name} is not a boolean")


def _weak_int(value: Any, name: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    raise SopsFormatError(f"sops metadata: {name} is not an integer")


def _key_group(md: Mapping[str, Any], where: str) -> dict[str, list[Any]]:
    group: dict[str, list[Any]] = {}
    for kind in _KEY_TYPE_NAMES:
        entries = md.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SopsFormatError(f"sops metadata: {where}{kind} is not a list of keys")
        if kind == "age":
            keys = []
            for entry in entries:
                keys.append(AgeKey(_weak_str(entry.get("recipient"), "recipient"), _weak_str(entry.get("enc"), "enc")))
            group[kind] = keys
        else:
            group[kind] = list(entries)
    return group


def _parse_metadata(tree: Any) -> SopsMetadata:
    md = _plain(tree)
    if not isinstance(md, dict):
        raise SopsFormatError("the sops metadata is not a mapping")
    rules = [(name, _weak_str(md.get(name), name)) for name in RULES]
    rules = [(n, v) for n, v in rules if v]
    if len(rules) > 1:
        raise SopsFormatError(
            f"the sops metadata sets more than one encryption rule ({', '.join(n for n, _ in rules)})"
        )
    groups: list[dict[str, list[Any]]] = []
    top = _key_group(md, "")
    if any(top.values()):
        groups = [top]
    elif md.get("key_groups"):
        raw = md["key_groups"]
        if not isinstance(raw, list) or not all(isinstance(g, dict) for g in raw):
            raise SopsFormatError("sops metadata: key_groups is not a list of mappings")
        groups = [_key_group(g, f"key_groups[{i}].") for i, g in enumerate(raw)]
    if not groups:
        raise SopsFormatError("the sops metadata names no master key")
    lastmodified = _weak_str(md.get("lastmodified"), "lastmodified")
    if _go_time(lastmodified) is None:
        raise SopsFormatError("sops metadata: lastmodified is not an RFC 3339 time")
    return SopsMetadata(
        version=_weak_str(md.get("version"), "version"),
        lastmodified=lastmodified,
        mac=_weak_str(md.get("mac"), "mac"),
        rule=rules[0] if rules else ("unencrypted_suffix", DEFAULT_UNENCRYPTED_SUFFIX),
        mac_only_encrypted=_weak_bool(md.get("mac_only_encrypted"), "mac_only_encrypted"),
        key_groups=groups,
        shamir_threshold=_weak_int(md.get("shamir_threshold"), "shamir_threshold"),
    )


def _unflatten(items: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """sops's flattened metadata (`age__list_0__map_enc`) back into a tree (stores/flatten.go)."""
    root: dict[str, Any] = {}

    def tokens(key: str) -> list[str | int]:
        out: list[str | int] = []
        parts = re.split(r"(__map_|__list_)", key)
        out.append(parts[0])
        for sep, text in zip(parts[1::2], parts[2::2], strict=True):
            if sep == "__map_":
                out.append(text)
            elif text.isdigit():
                out.append(int(text))
            else:
                raise SopsFormatError(f"sops metadata: malformed flattened key {key}")
        return out

    for key, value in items:
        node: Any = root
        toks = tokens(key)
        for i, tok in enumerate(toks):
            last = i == len(toks) - 1
            container_key = ("m", tok) if isinstance(tok, str) else ("l", tok)
            if not isinstance(node, dict):
                raise SopsFormatError(f"sops metadata: conflicting flattened keys at {key}")
            if last:
                if container_key in node:
                    raise SopsFormatError(f"sops metadata: duplicate flattened key {key}")
                node[container_key] = value
            else:
                node = node.setdefault(container_key, {})

    def convert(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kinds = {k[0] for k in node}
        if kinds == {"l"}:
            indices = sorted(k[1] for k in node)
            if indices != list(range(len(indices))):
                raise SopsFormatError("sops metadata: a flattened list has gaps")
            return [convert(node[("l", i)]) for i in indices]
        if kinds == {"m"}:
            return {k[1]: convert(v) for k, v in sorted(node.items())}
        if not node:
            return {}
        raise SopsFormatError("sops metadata: a flattened key is both a list and a mapping")

    result = convert(root)
    assert isinstance(result, dict)
    return result


# --- identities ------------------------------------------------------------------------------------


def _read_private_file(path: Path, label: str) -> bytes:
    """Read a key file, refusing one that group or others may read (sealer's rule for private keys)."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise IdentityError(f"{label}: key file not found", file=name) from None
    except OSError as err:
        raise IdentityError(f"{label}: cannot read key file: {err.strerror}", file=name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IdentityError(f"{label}: the key file is not a regular file", file=name)
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise IdentityError(
                f"{label}: key file {name} is readable by group or others (mode {mode:04o}); "
                f"run: chmod 600 {shlex.quote(name)}"
            )
        data = os.read(fd, MAX_KEY_SOURCE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_SOURCE_BYTES:
        raise IdentityError(f"{label}: the key file is larger than 1 MiB", file=name)
    return data


def _parse_sops_keys(text: str, source: str, *, several_per_line: bool) -> list[Identity]:
    """sops's keys-file format. Plugin and post-quantum identities are skipped: the age layer here
    opens X25519 stanzas only (sops's mlkem768x25519 and plugin stanzas are future work)."""
    from .._keys import parse_identity

    found: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for word in line.split() if several_per_line else [line]:
            if word.startswith(("AGE-PLUGIN-", "AGE-SECRET-KEY-PQ-1")):
                continue
            try:
                found.append(parse_identity(word))
            except KeyFormatError as err:
                raise KeyFormatError(f"line {number}: {err}", file=source) from None
    return found


def _key_text(data: bytes, source: str, passphrase: Callable[[str], str] | None) -> str:
    if age.is_age_file(data):
        if passphrase is None:
            raise IdentityError(
                f"{source} is a passphrase-protected age file",
                hint="open it with `age -d` into a 0600 file and point SOPS_AGE_KEY_FILE there",
            )
        return age.decrypt_identity_file(data, passphrase(source), source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFormatError("not UTF-8 text", file=source) from None


def _run_key_command(command: str, env: Mapping[str, str] | None) -> bytes:
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError:
        raise IdentityError("SOPS_AGE_KEY_CMD is not a valid command line (unbalanced quotes)") from None
    if not argv:
        raise IdentityError("SOPS_AGE_KEY_CMD is empty")
    name = argv[0]
    try:
        # Run once, no shell, stdin closed; stderr goes to the user (a login prompt, an error).
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=KEY_COMMAND_TIMEOUT,
            check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise IdentityError(f"SOPS_AGE_KEY_CMD: command not found: {name}") from None
    except subprocess.TimeoutExpired:
        raise IdentityError(f"SOPS_AGE_KEY_CMD: {name} did not finish within {KEY_COMMAND_TIMEOUT:g} s") from None
    except OSError as err:
        raise IdentityError(f"SOPS_AGE_KEY_CMD: cannot run {name}: {err.strerror}") from None
    if result.returncode != 0:
        raise IdentityError(f"SOPS_AGE_KEY_CMD: {name} failed with exit status {result.returncode}")
    if len(result.stdout) > MAX_KEY_SOURCE_BYTES:
        raise IdentityError(f"SOPS_AGE_KEY_CMD: {name} printed more than 1 MiB")
    return result.stdout


def _sops_keys_file(env: Mapping[str, str]) -> Path:
    """sops's default keys file on Linux: $XDG_CONFIG_HOME/sops/age/keys.txt, else ~/.config/…."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "sops" / "age" / "keys.txt"


def sops_identities(
    environ: Mapping[str, str] | None = None, *, passphrase: Callable[[str], str] | None = None
) -> list[Identity]:
    """The age identities sops itself would find: `SOPS_AGE_KEY` (keys separated by whitespace),
    `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD` (run once, no shell), all of those that are set; else
    sops's default keys file. Empty when none is set or present.

    Key files readable by group or others are refused, as sealer refuses its own. A keys file that is
    itself passphrase-protected (as sops allows) opens only with a `passphrase(source)` callback.
    """
    env = os.environ if environ is None else environ
    found: list[Identity] = []
    if "SOPS_AGE_KEY" in env:
        found += _parse_sops_keys(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY", several_per_line=True)
    if env.get("SOPS_AGE_KEY_FILE"):
        path = Path(env["SOPS_AGE_KEY_FILE"])
        label = f"SOPS_AGE_KEY_FILE ({path})"
        text = _key_text(_read_private_file(path, "SOPS_AGE_KEY_FILE"), label, passphrase)
        found += _parse_sops_keys(text, label, several_per_line=False)
    if env.get("SOPS_AGE_KEY_CMD"):
        command = env["SOPS_AGE_KEY_CMD"]
        out = _run_key_command(command, None if environ is None else env)
        label = f"output of SOPS_AGE_KEY_CMD ({shlex.split(command)[0]})"
        found += _parse_sops_keys(_key_text(out, label, passphrase), label, several_per_line=False)
    if not found:
        default = _sops_keys_file(env)
        if default.is_file():
            text = _key_text(_read_private_file(default, "sops keys file"), str(default), passphrase)
            found += _parse_sops_keys(text, str(default), several_per_line=False)
    unique: dict[str, Identity] = {}
    for identity in found:
        unique.setdefault(identity.kid, identity)
    return list(unique.values())


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class SopsFile:
    """A decrypted SOPS file. `documents` is the plaintext as Python data (one per YAML document,
    comments left out); `comments` lists the decrypted comments with their AAD; `raw` is the payload
    of a binary-store file. `to_yaml()` prints the plaintext as `sops -d` would, comments included."""

    source: str
    format: str
    documents: list[Any]
    metadata: SopsMetadata
    comments: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None
    mac: str = ""  # the verified MAC (upper-case hex SHA-512)
    data_key: bytes = field(default=b"", repr=False)
    _branches: list[Branch] = field(default_factory=list, repr=False)

    def to_yaml(self) -> str:
        """The plaintext as YAML (sops's layout: 4-space indent), decrypted comments in place."""
        return _emit_yaml(self._branches)


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The store sops picks for a file name: .yaml/.yml, .json, .env, .ini, else binary."""
    name = os.fspath(path)
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".env"):
        return "dotenv"
    if name.endswith(".ini"):
        return "ini"
    return "binary"


def read_file(
    path: str | os.PathLike[str],
    identities: Sequence[Identity] | None = None,
    *,
    fmt: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SopsFile:
    """Read and decrypt a SOPS file; the store comes from the name unless `fmt` says. With
    `identities=None` the keys come from sops's own sources (`sops_identities`)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError("no such file", file=name) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", file=name) from None
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", file=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit", file=name)
    return read(data, fmt or format_for_path(name), identities, environ=environ, source=name)


def read(
    data: bytes,
    fmt: str,
    identities: Sequence[Identity] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    source: str = "<input>",
) -> SopsFile:
    """Decrypt a SOPS file held in memory: every value opened at its own place, the MAC checked.

    Nothing is returned unless the whole file verified.
    """
    try:
        return _read(data, fmt, identities, environ, source)
    except RecursionError:
        raise SopsFormatError("nested too deeply", file=source) from None
    except SopsError as err:
        if err.file is None:
            raise type(err)(str(err), file=source) from None
        raise


def _read(
    data: bytes, fmt: str, identities: Sequence[Identity] | None, environ: Mapping[str, str] | None, source: str
) -> SopsFile:
    if fmt not in FORMATS:
        raise SopsFormatError(f"unknown SOPS store {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SopsFormatError(f"not UTF-8 text (bad byte at offset {err.start})") from None
    branches, meta_tree = _load_encrypted(text, fmt, source)
    metadata = _parse_metadata(meta_tree)
    ids = list(sops_identities(environ)) if identities is None else list(identities)
    key = _data_key(metadata, ids)
    rule = _Rule.make(*metadata.rule)
    digest = hashlib.sha512()
    if metadata.mac_only_encrypted:
        digest.update(_MAC_ONLY_ENCRYPTED_INIT)
    comments: list[tuple[str, str]] = []

    def on_leaf(value: Any, path: list[str], stack: list[tuple[str, ...]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rule.encrypts(path, stack, is_comment)
        if encrypted:
            aad = _aad(path)
            if isinstance(value, Comment):
                value = _decrypt_comment(value, key, aad)
                comments.append((aad, value.text))
            elif isinstance(value, str):
                if value:
                    where = f"the value at {_fmt_path(path)}"
                    value = _typed(*_decrypt_text(value, key, aad, where), where)
            else:
                raise SopsValueError(f"the value at {_fmt_path(path)} is not encrypted, but the rules say it must be")
        if (not metadata.mac_only_encrypted or encrypted) and not is_comment:
            digest.update(_to_bytes(value))
        return value

    plain = [_walk_branch(b, [], [], on_leaf) for b in branches]
    mac = digest.hexdigest().upper()
    _check_mac(metadata, key, mac)
    raw = None
    if fmt == "binary":
        value = dict((k, v) for k, v in plain[0] if isinstance(k, str)).get("data") if plain else None
        if not isinstance(value, (str, bytes)):
            raise SopsFormatError("a binary-store SOPS file needs one string value named data")
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    if fmt == "ini":  # go-ini always has a DEFAULT section; leave it out when it is empty
        plain = [Branch((k, v) for k, v in b if not (k == "DEFAULT" and not _has_items(v))) for b in plain]
    documents = [_python(b) for b in plain]
    return SopsFile(source, fmt, documents, metadata, comments, raw, mac, key, plain)


def _decrypt_comment(comment: Comment, key: bytes, aad: str) -> Comment:
    """Decrypt a comment; one that does not decrypt is kept as it is, as sops does (older files)."""
    if not comment.text:
        return comment
    try:
        plain, vtype = _decrypt_text(comment.text, key, aad, "a comment")
    except SopsValueError:
        return comment
    if vtype != "comment":
        return comment
    return Comment(plain.decode("utf-8", "surrogateescape"), comment.inline)


def _check_mac(metadata: SopsMetadata, key: bytes, computed: str) -> None:
    if not metadata.mac:
        raise SopsMACError("the file has no MAC", hint="sops writes one; the file was cut or edited by hand")
    stamp = _go_time(metadata.lastmodified, seconds_only=True)
    assert stamp is not None  # checked in _parse_metadata
    try:
        plain, vtype = _decrypt_text(metadata.mac, key, stamp.text, "the MAC")
    except SopsValueError:
        raise SopsMACError("the MAC does not decrypt: the mac or lastmodified entry was altered") from None
    if vtype != "str" or not hmac.compare_digest(plain, computed.encode("ascii")):
        raise SopsMACError(
            "MAC mismatch: the file was altered (a value added, removed, reordered or edited)",
            hint="restore it from git; sops --ignore-mac overrides this check, sealer does not",
        )


def _data_key(metadata: SopsMetadata, identities: Sequence[Identity]) -> bytes:
    if len(metadata.key_groups) > 1:
        raise SopsUnsupportedError(
            f"the data key is split over {len(metadata.key_groups)} key groups (Shamir secret sharing), "
            "which sealer does not read",
            hint="re-encrypt the file with sops to a single key group with an age recipient",
        )
    keys = metadata.age_keys
    if not keys:
        types = metadata.key_types
        names = " and ".join(types) if len(types) < 3 else ", ".join(types[:-1]) + " and " + types[-1]
        raise SopsUnsupportedError(
            f"the data key is wrapped only for {names} {'keys' if len(types) > 1 else 'key'}; "
            "sealer reads SOPS files through age recipients only",
            hint="add one with sops first: sops rotate -i --add-age age1… FILE",
        )
    if not identities:
        raise SopsNoKeyError(
            "no age identity to open this file",
            hint="set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or pass --identity",
        )
    ours = {i.recipient.encode() for i in identities}
    # Entries naming one of our recipients first: the name is public, trying it costs nothing.
    ordered = sorted(keys, key=lambda k: k.recipient not in ours)
    broken = 0
    for entry in ordered:
        try:
            key = age.decrypt(entry.enc.encode("utf-8"), identities)
        except age.AgeNoMatchError:
            continue
        except age.AgeError:
            broken += 1
            continue
        if len(key) != 32:
            raise SopsFormatError("the age stanza holds a data key that is not 32 bytes")
        return key
    kids = ", ".join(i.kid for i in identities)
    extra = f"; {broken} age stanza(s) are malformed" if broken else ""
    raise SopsNoKeyError(
        f"none of the file's {len(keys)} age stanzas opens with the identities we hold (kids {kids}){extra}",
        hint="use the key this file was encrypted to: SOPS_AGE_KEY_FILE or --identity",
    )


def _python(value: Any) -> Any:
    """The plaintext as Python data: dicts, lists, scalars; timestamps as datetimes."""
    if isinstance(value, Branch):
        return {k: _python(v) for k, v in value if not isinstance(k, Comment)}
    if isinstance(value, list):
        return [_python(v) for v in value if not isinstance(v, Comment)]
    if isinstance(value, GoTime):
        return value.to_datetime()
    return value


def _load_encrypted(text: str, fmt: str, source: str) -> tuple[list[Branch], Any]:
    """Load a store's tree and pull out its metadata, as stores.ExtractMetadata does."""
    if fmt == "yaml":
        branches = _load_yaml(text, source)
        meta = None
        for i, branch in enumerate(branches):
            keep = Branch()
            for key, value in branch:
                if key == "sops":
                    if i == 0:
                        if meta is not None:
                            raise SopsFormatError("the file has two sops: entries")
                        meta = value
                    continue
                keep.append((key, value))
            branches[i] = keep
        if meta is None:
            raise SopsFormatError("not a SOPS file: no sops metadata", hint="is it encrypted, or cut short?")
        return branches, meta
    if fmt in ("json", "binary"):
        branch = _load_json(text)
        meta = [v for k, v in branch if k == "sops"]
        if not meta:
            raise SopsFormatError("not a SOPS file: no sops metadata", hint="is it encrypted, or cut short?")
        if len(meta) > 1:
            raise SopsFormatError("the file has two sops entries")
        return [Branch((k, v) for k, v in branch if k != "sops")], meta[0]
    if fmt == "dotenv":
        branch = _load_dotenv(text)
        flat = [(k[5:], v) for k, v in branch if isinstance(k, str) and k.startswith("sops_")]
        if not flat:
            raise SopsFormatError("not a SOPS file: no sops_ metadata lines", hint="is it encrypted?")
        rest = Branch((k, v) for k, v in branch if not (isinstance(k, str) and k.startswith("sops_")))
        return [rest], _unflatten(flat)
    branch = _load_ini(text)
    sections = [v for k, v in branch if k == "sops"]
    if not sections:
        raise SopsFormatError("not a SOPS file: no [sops] section", hint="is it encrypted?")
    flat = [(k, v.replace("\\n", "\n")) for k, v in sections[0] if isinstance(k, str) and isinstance(v, str)]
    return [Branch((k, v) for k, v in branch if k != "sops")], _unflatten(flat)


# --- stores: JSON, dotenv, INI ----------------------------------------------------------------------


def _load_json(text: str) -> Branch:
    def integer(token: str) -> int | float:
        value = int(token)
        return value if _INT64[0] <= value <= _INT64[1] else float(token)

    def constant(token: str) -> Any:
        raise SopsFormatError(f"JSON does not allow {token}")

    try:
        value = json.loads(text, object_pairs_hook=Branch, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise SopsFormatError(f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise SopsFormatError("JSON nested too deeply") from None
    if not isinstance(value, Branch):
        raise SopsFormatError("the JSON top level is not an object")
    return value


def _load_dotenv(text: str) -> Branch:
    branch = Branch()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        if line.startswith("#"):
            branch.append((Comment(line[1:]), None))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SopsFormatError(f"line {number} of the dotenv file is not KEY=VALUE")
        branch.append((key, value.replace("\\n", "\n")))
    return branch


def _ini_comment(text: str) -> str:
    """sops's stripCommentChar."""
    if text.startswith(";"):
        return text.lstrip("; ")
    if text.startswith("#"):
        return text.lstrip("# ")
    return text


def _load_ini(text: str) -> Branch:
    """INI as go-ini reads it for sops: sections (a DEFAULT one first), `key = value` or `key: value`,
    `#`/`;` comments (a section's preceding comment is its comment, a key's is appended after it),
    an inline `#`/`;` ending an unquoted value."""
    sections: list[tuple[str, Branch]] = [("DEFAULT", Branch())]
    pending: list[str] = []
    current = sections[0][1]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line[0] in "#;":
            pending.append(line)
            continue
        if line.startswith("["):
            close = line.rfind("]")
            if close < 0:
                raise SopsFormatError(f"line {number} of the INI file: unclosed section header")
            current = Branch()
            if pending:
                current.append((Comment(_ini_comment("\n".join(pending))), None))
                pending = []
            sections.append((line[1:close].strip(), current))
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            raise SopsFormatError(f"line {number} of the INI file is not key = value")
        key, value = line[:cut].strip(), line[cut + 1 :].strip()
        inline = ""
        if len(value) >= 2 and value[0] in "\"'`" and value[-1] == value[0]:
            value = value[1:-1]
        else:
            hashes = [i for i in (value.find("#"), value.find(";")) if i >= 0]
            if hashes:
                inline, value = value[min(hashes) :], value[: min(hashes)].strip()
        current.append((key, value))
        note = "\n".join([*pending, inline] if inline else pending)
        pending = []
        if note:
            current.append((Comment(_ini_comment(note)), None))
    return Branch(sections)


# --- YAML: loading with comments -------------------------------------------------------------------


@dataclass
class _Coll:
    node: Any
    col: int
    start: int
    end: int
    depth: int
    item_lines: list[int]
    comments: list[tuple[int, int, Comment]] = field(default_factory=list)


def _yaml_error(err: Exception) -> SopsFormatError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or "cannot parse"
    return SopsFormatError(f"malformed YAML{where}: {problem}")


def _load_yaml(text: str, source: str) -> list[Branch]:
    """YAML documents as sops's trees: go-yaml scalar typing, comments kept where go-yaml puts them
    (in the mapping or list whose items they sit among), aliases expanded against a budget."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        roots = list(YAML(typ="safe", pure=True).compose_all(text))
    except YAMLError as err:
        raise _yaml_error(err) from None
    except RecursionError:
        raise SopsFormatError("YAML nested too deeply") from None
    lines = text.split("\n")
    spans: list[tuple[int, int]] = []
    seen: set[int] = set()

    def collect(node: Any) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if n is None or id(n) in seen:
                continue
            seen.add(id(n))
            if n.id == "scalar":
                spans.append((n.start_mark.index, n.end_mark.index))
            elif n.id == "mapping":
                for k, v in n.value:
                    stack += [k, v]
            else:
                stack += list(n.value)

    for root in roots:
        collect(root)
    spans.sort()
    comments = _scan_comments(text, spans)
    markers = _document_markers(lines, spans)
    budget = [MAX_NODES]
    out: list[Branch] = []
    for index, root in enumerate(roots):
        if root is None or (root.id == "scalar" and str(root.tag) == "tag:yaml.org,2002:null"):
            out.append(Branch())
            continue
        if root.id != "mapping":
            raise SopsFormatError(f"YAML document {index} is not a mapping (sops supports mappings only)")
        first = root.start_mark.line
        begin = max((m for m in markers if m < first), default=0)
        nxt = roots[index + 1] if index + 1 < len(roots) else None
        limit = len(lines)
        if nxt is not None:
            limit = max((m for m in markers if m < nxt.start_mark.line), default=nxt.start_mark.line)
        colls = _index_collections(root, begin, limit)
        mine = [c for c in comments if begin <= c[0] < limit]
        _assign_comments(colls, mine)
        by_node = {id(c.node): c for c in colls}
        out.append(_build(root, [], by_node, budget, set()))
    return out


def _in_span(spans: list[tuple[int, int]], index: int) -> bool:
    i = bisect.bisect_right(spans, (index, math.inf)) - 1
    return i >= 0 and spans[i][0] <= index < spans[i][1]


def _scan_comments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, Comment]]:
    """Every comment: (line, column, Comment). A '#' starts one at a line's start or after a blank,
    outside any scalar."""
    found: list[tuple[int, int, Comment]] = []
    offset = 0
    for number, line in enumerate(text.split("\n")):
        start = 0
        while True:
            i = line.find("#", start)
            if i < 0:
                break
            if (i == 0 or line[i - 1] in " \t") and not _in_span(spans, offset + i):
                body = line[i + 1 :]
                body = body[:-1] if body.endswith("\r") else body
                inline = bool(line[:i].strip())
                if not line.lstrip().startswith("%"):
                    found.append((number, i, Comment(body, inline)))
                break
            start = i + 1
        offset += len(line) + 1
    return found


def _document_markers(lines: list[str], spans: list[tuple[int, int]]) -> list[int]:
    markers = []
    offset = 0
    for number, line in enumerate(lines):
        if (line == "---" or line.startswith(("--- ", "---\t"))) and not _in_span(spans, offset):
            markers.append(number)
        offset += len(line) + 1
    return markers


def _index_collections(root: Any, begin: int, limit: int) -> list[_Coll]:
    colls: list[_Coll] = []
    seen: set[int] = set()

    def visit(node: Any, owner_line: int | None, depth: int) -> None:
        if id(node) in seen or node.id == "scalar":
            return
        seen.add(id(node))
        if node.id == "mapping":
            items = [k.start_mark.line for k, _ in node.value]
            children = [(v, k.start_mark.line) for k, v in node.value]
        else:
            items = [v.start_mark.line for v in node.value]
            children = [(v, v.start_mark.line) for v in node.value]
        start = node.start_mark.line
        if owner_line is None:
            start = begin
        elif start > owner_line:
            start = owner_line + 1
        last = max([node.end_mark.line, *(v.end_mark.line + 1 for v, _ in children)]) if children else start + 1
        end = node.end_mark.line + 1 if node.flow_style else max(node.end_mark.line, last)
        if owner_line is None:
            end = limit
        colls.append(_Coll(node, node.start_mark.column, start, end, depth, items))
        for child, line in children:
            visit(child, line, depth + 1)

    visit(root, None, 0)
    return colls


def _assign_comments(colls: list[_Coll], comments: list[tuple[int, int, Comment]]) -> None:
    """Put each comment into the collection go-yaml and sops would: an inline one with the item on
    its line; a full-line one into the deepest collection around it whose items are not indented
    further than the comment."""
    root = min(colls, key=lambda c: c.depth)
    for line, col, comment in comments:
        target = None
        if comment.inline:
            holders = [c for c in colls if line in c.item_lines]
            if holders:
                target = max(holders, key=lambda c: (c.depth, c.start))
        if target is None:
            around = [c for c in colls if c.start <= line < c.end and c.col <= col]
            target = max(around, key=lambda c: (c.depth, c.start)) if around else root
        target.comments.append((line, col, comment))


def _build(node: Any, path: list[str], colls: dict[int, _Coll], budget: list[int], active: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise SopsFormatError(f"more than {MAX_NODES} values once YAML aliases are expanded")
    if node.id == "scalar":
        return _scalar(node, path)
    if id(node) in active:
        raise SopsFormatError(f"{_fmt_path(path)}: a recursive YAML alias")
    active.add(id(node))
    coll = colls.pop(id(node), None)  # an alias's second use carries no comments
    notes = sorted(coll.comments, key=lambda c: (c[0], c[1])) if coll else []
    result: Any
    if node.id == "mapping":
        result = Branch()
        keys: set[str] = set()
        for (key_node, value_node), line in zip(node.value, (k.start_mark.line for k, _ in node.value), strict=True):
            notes = _flush_comments(notes, line, result, as_keys=True)
            if key_node.id != "scalar":
                raise SopsFormatError(f"{_fmt_path(path)}: complex mapping keys are not supported")
            key = _scalar(key_node, path)
            if not isinstance(key, str):
                raise SopsFormatError(
                    f"{_fmt_path(path)}: the key {key_node.value!r} is not a string (sops supports string keys only)"
                )
            if key in keys:
                raise SopsFormatError(f"{_fmt_path(path)}: duplicate key {key!r}")
            keys.add(key)
            result.append((key, _build(value_node, [*path, key], colls, budget, active)))
        _flush_comments(notes, math.inf, result, as_keys=True)
    else:
        result = []
        for item in node.value:
            notes = _flush_comments(notes, item.start_mark.line, result, as_keys=False)
            result.append(_build(item, path, colls, budget, active))
        _flush_comments(notes, math.inf, result, as_keys=False)
    active.discard(id(node))
    return result


def _flush_comments(notes: list[tuple[int, int, Comment]], line: float, out: list[Any], *, as_keys: bool) -> list[Any]:
    """Append the comments that come before an item starting at `line` (inline ones on that line too)."""
    rest = []
    for note in notes:
        if note[0] < line or (note[0] == line and note[2].inline):
            out.append((note[2], None) if as_keys else note[2])
        else:
            rest.append(note)
    return rest


_STR_TAG: Final = "tag:yaml.org,2002:str"


def _scalar(node: Any, path: list[str]) -> Any:
    """A scalar as go-yaml v3 decodes it into interface{} (what sops works on)."""
    from ruamel.yaml.nodes import ScalarNode

    value = str(node.value)
    tag = str(node.tag)
    if node.style is None:
        implicit = str(_resolver().resolve(ScalarNode, value, (True, False)))
        if tag == implicit:
            resolved = _go_resolve(value)
            return resolved
    elif tag == _STR_TAG:
        return value
    # An explicit tag.
    short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else None
    if short == "str":
        return value
    if short == "binary":
        try:
            return base64.b64decode("".join(value.split()), validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            raise SopsFormatError(f"{_fmt_path(path)}: malformed !!binary value") from None
    if short in ("int", "float", "bool", "null", "timestamp"):
        resolved = _go_resolve(value)
        kind = {int: "int", float: "float", bool: "bool", type(None): "null", GoTime: "timestamp"}.get(type(resolved))
        if kind == short or (short == "float" and kind == "int"):
            return float(resolved) if short == "float" else resolved
        raise SopsFormatError(f"{_fmt_path(path)}: the value is not a valid !!{short}")
    return value  # an unknown tag: go-yaml keeps the text


# --- YAML: emitting (go-yaml v3's layout with sops's indent of 4) ----------------------------------

_INDENT: Final = 4
_PLAIN_FIRST_BAD: Final = set("[]{},#&*!|>'\"%@`")
_PLAIN_FIRST_NEEDS_FOLLOW: Final = set("-?:")


def _next_indent(indent: int) -> int:
    """go-yaml's rule: nested blocks go to the next multiple of the indent."""
    return _INDENT * ((indent + _INDENT) // _INDENT)


def _printable(ch: str) -> bool:
    o = ord(ch)
    if o in (0x09, 0x0A):
        return True
    if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
        return False
    return not (0xD800 <= o <= 0xDFFF or o in (0xFEFF, 0xFFFE, 0xFFFF, 0x2028, 0x2029, 0x85))


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip() or "\t" in text or "\n" in text:
        return False
    if text[0] in _PLAIN_FIRST_BAD:
        return False
    if text[0] in _PLAIN_FIRST_NEEDS_FOLLOW and (len(text) == 1 or text[1] == " "):
        return False
    if ": " in text or " #" in text or text.endswith(":") or text.startswith(("---", "...")):
        return False
    return all(_printable(c) for c in text)


def _yaml_str(text: str, *, is_key: bool = False) -> str | tuple[str, list[str]]:
    """A string as go-yaml would write it: plain when it reads back as the same string, a literal
    block for multi-line text, else quoted. Returns (header, lines) for a block scalar."""
    from .._document import quote_string

    _check_utf8(text)
    if text == "":
        return '""'
    if _yaml_needs_quotes(text):
        return quote_string(text)
    if "\n" in text and not is_key and _literal_ok(text):
        body = text[:-1] if text.endswith("\n") else text
        chomp = "-" if not text.endswith("\n") else ("+" if text.endswith("\n\n") else "")
        return "|" + chomp, body.split("\n")
    if _plain_ok(text):
        return text
    if "\n" not in text and all(_printable(c) and c != "\t" for c in text):
        return "'" + text.replace("'", "''") + "'"
    return quote_string(text)


def _check_utf8(text: str) -> None:
    """Clear text in the file must be UTF-8: sops's YAML and JSON readers refuse anything else."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise SopsUnsupportedError("a key, comment or clear value is not UTF-8 text")


def _literal_ok(text: str) -> bool:
    if text[0] in " \n" or "\r" in text or "\t" in text:
        return False
    if not all(_printable(c) for c in text):
        return False
    return not any(line != line.rstrip(" ") for line in text.split("\n"))


def _yaml_scalar(value: Any) -> str | tuple[str, list[str]]:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, GoTime):
        return value.text
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return _yaml_str(value)
    raise SopsUnsupportedError(f"cannot write a value of type {type(value).__name__} as YAML")


def _has_items(value: Any) -> bool:
    if isinstance(value, Branch):
        return any(not isinstance(k, Comment) for k, _ in value)
    return any(not isinstance(v, Comment) for v in value)


def _comment_line(indent: int, comment: Comment) -> str:
    _check_utf8(comment.text)
    if "\n" in comment.text or "\r" in comment.text:
        raise SopsUnsupportedError("a comment holds a line break")
    return " " * indent + "#" + comment.text


def _inline_suffix(comment: Comment | None) -> str:
    return "" if comment is None else " " + _comment_line(0, comment)


def _emit_value_lines(head: str, value: Any, content_indent: int, inline: Comment | None) -> list[str]:
    """`head` is what precedes the value on its line ("key:" or "-")."""
    suffix = _inline_suffix(inline)
    if isinstance(value, (Branch, list)) and not _has_items(value):
        return [f"{head} {'{}' if isinstance(value, Branch) else '[]'}{suffix}"]
    scalar = _yaml_scalar(value)
    if isinstance(scalar, tuple):
        header, body = scalar
        return [f"{head} {header}{suffix}", *((" " * content_indent + line) if line else "" for line in body)]
    return [f"{head} {scalar}{suffix}"]


def _emit_mapping(branch: Branch, indent: int) -> list[str]:
    lines: list[str] = []
    inline: list[Comment] = []
    for key, value in branch:
        if isinstance(key, Comment):
            if key.inline:
                inline.append(key)
            else:
                lines.append(_comment_line(indent, key))
            continue
        note = inline.pop(0) if inline else None
        lines += [_comment_line(indent, c) for c in inline]
        inline = []
        k = _yaml_str(key, is_key=True)
        assert isinstance(k, str)
        if len(k) > 1024:
            raise SopsUnsupportedError("a mapping key longer than 1024 characters (YAML's limit for keys)")
        head = " " * indent + k + ":"
        if isinstance(value, (Branch, list)) and _has_items(value):
            child = _next_indent(indent)
            lines.append(head + _inline_suffix(note))
            lines += _emit_mapping(value, child) if isinstance(value, Branch) else _emit_sequence(value, child)
        else:
            lines += _emit_value_lines(head, value, _next_indent(indent), note)
    lines += [_comment_line(indent, c) for c in inline]
    return lines


def _emit_sequence(items: list[Any], indent: int) -> list[str]:
    lines: list[str] = []
    inline: list[Comment] = []
    dash = " " * indent + "-"
    for item in items:
        if isinstance(item, Comment):
            if item.inline:
                inline.append(item)
            else:
                lines.append(_comment_line(indent, item))
            continue
        note = inline.pop(0) if inline else None
        lines += [_comment_line(indent, c) for c in inline]
        inline = []
        if isinstance(item, (Branch, list)) and _has_items(item):
            if note is not None:
                lines.append(_comment_line(indent, note))
            # Comments before the first entry go above the dash (same AAD: a list adds no path).
            if isinstance(item, Branch):
                lead = next(i for i, (k, _) in enumerate(item) if not isinstance(k, Comment))
                lines += [_comment_line(indent, c) for c, _ in item[:lead]]
                sub = _emit_mapping(Branch(item[lead:]), indent + 2)
            else:
                lead = next(i for i, v in enumerate(item) if not isinstance(v, Comment))
                lines += [_comment_line(indent, c) for c in item[:lead]]
                sub = _emit_sequence(item[lead:], indent + 2)
            lines.append(dash + " " + sub[0][indent + 2 :])
            lines += sub[1:]
        else:
            lines += _emit_value_lines(dash, item, indent + 2, note)
    lines += [_comment_line(indent, c) for c in inline]
    return lines


def _emit_yaml(branches: Sequence[Branch]) -> str:
    docs = []
    for branch in branches:
        lines = _emit_mapping(branch, 0) if _has_items(branch) else [*_emit_mapping(branch, 0), "{}"]
        docs.append("\n".join(lines) + "\n")
    return "---\n".join(docs)


# --- JSON: emitting (Go's encoding/json with json.Indent and a tab) --------------------------------


def _json_str(text: str) -> str:
    _check_utf8(text)
    out = json.dumps(text, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        out = out.replace(ch, esc)
    return out


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise SopsUnsupportedError("JSON cannot hold NaN or infinity")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = repr(value).partition("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return _go_float(value)


def _emit_json(value: Any, level: int = 0) -> str:
    pad = "\t" * (level + 1)
    if isinstance(value, Branch):
        items = [(k, v) for k, v in value if not isinstance(k, Comment)]
        if not items:
            return "{}"
        body = ",\n".join(f"{pad}{_json_str(k)}: {_emit_json(v, level + 1)}" for k, v in items)
        return "{\n" + body + "\n" + "\t" * level + "}"
    if isinstance(value, list):
        items = [v for v in value if not isinstance(v, Comment)]
        if not items:
            return "[]"
        return "[\n" + ",\n".join(pad + _emit_json(v, level + 1) for v in items) + "\n" + "\t" * level + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, GoTime):
        return _json_str(value.text)
    if isinstance(value, bytes):
        return _json_str(value.decode("utf-8", "replace"))
    if isinstance(value, str):
        return _json_str(value)
    raise SopsUnsupportedError(f"cannot write a value of type {type(value).__name__} as JSON")


# --- writing ---------------------------------------------------------------------------------------


def _tree(value: Any, path: list[str]) -> Any:
    """Python data as a sops tree (dicts to Branches, datetimes to GoTime), checked on the way."""
    if isinstance(value, Branch):
        return value
    if isinstance(value, Mapping):
        out = Branch()
        for k, v in value.items():
            if not isinstance(k, str):
                raise SopsUnsupportedError(f"{_fmt_path(path)}: the key {k!r} is not a string (SOPS needs string keys)")
            out.append((k, _tree(v, [*path, k])))
        return out
    if isinstance(value, (list, tuple)):
        return [_tree(v, path) for v in value]
    if isinstance(value, (datetime, date)):
        return GoTime.from_datetime(value)
    if value is None or isinstance(value, (str, bool, int, float, GoTime, Comment, bytes)):
        return value
    raise SopsUnsupportedError(f"{_fmt_path(path)}: cannot store a value of type {type(value).__name__}")


def _hoist_orphans(value: Any) -> Any:
    """Comments inside a collection that has no item are written before it, in its parent; move them
    there before encrypting so that their AAD is the one sops will compute."""
    if isinstance(value, Branch):
        out = Branch()
        for k, v in value:
            if isinstance(v, (Branch, list)) and not _has_items(v):
                inner = [c for c, _ in v] if isinstance(v, Branch) else list(v)
                out += [(Comment(c.text), None) for c in inner if isinstance(c, Comment)]
                v = Branch() if isinstance(v, Branch) else []
            out.append((k, _hoist_orphans(v)))
        return out
    if isinstance(value, list):
        out_list: list[Any] = []
        for v in value:
            if isinstance(v, (Branch, list)) and not _has_items(v):
                inner = [c for c, _ in v] if isinstance(v, Branch) else list(v)
                out_list += [Comment(c.text) for c in inner if isinstance(c, Comment)]
                v = Branch() if isinstance(v, Branch) else []
            out_list.append(_hoist_orphans(v))
        return out_list
    return value


def _strip_comments(value: Any) -> Any:
    if isinstance(value, Branch):
        return Branch((k, _strip_comments(v)) for k, v in value if not isinstance(k, Comment))
    if isinstance(value, list):
        return [_strip_comments(v) for v in value if not isinstance(v, Comment)]
    return value


def _recipient_text(value: Recipient | str) -> str:
    from .._keys import X25519Recipient, parse_recipient

    recipient = parse_recipient(value) if isinstance(value, str) else value
    if not isinstance(recipient, X25519Recipient):
        raise SopsUnsupportedError(f"cannot export to a {recipient.kind} recipient: SOPS files here use age X25519")
    return recipient.encode()


def write(
    documents: Sequence[Mapping[str, Any]],
    recipients: Sequence[Recipient | str],
    *,
    fmt: str = "yaml",
    now: datetime | None = None,
    mac_only_encrypted: bool = False,
    version: str = SOPS_VERSION,
    **rule: str,
) -> bytes:
    """Encrypt plaintext documents (dicts) into a SOPS file for the age recipients, as `sops -e`
    would: a fresh data key, every selected value encrypted at its path, the MAC, the 3.13 metadata.

    `rule` is at most one of RULES (e.g. encrypted_regex="^(data|stringData)$"); without one sops's
    default, unencrypted_suffix="_unencrypted", applies and is written. `fmt` is "yaml" (several
    documents allowed, each gets the metadata) or "json" (one document).
    """
    try:
        return _write([_tree(d, []) for d in documents], recipients, fmt, now, mac_only_encrypted, version, rule)
    except RecursionError:
        raise SopsUnsupportedError("the data is nested too deeply") from None


def write_text(
    text: str,
    recipients: Sequence[Recipient | str],
    *,
    fmt: str = "yaml",
    source: str = "<input>",
    now: datetime | None = None,
    mac_only_encrypted: bool = False,
    version: str = SOPS_VERSION,
    **rule: str,
) -> bytes:
    """Encrypt a plaintext YAML text as `sops -e` would: values typed as sops's YAML library types
    them, comments encrypted in place (YAML output; JSON has none)."""
    try:
        return _write(_load_yaml(text, source), recipients, fmt, now, mac_only_encrypted, version, rule)
    except RecursionError:
        raise SopsFormatError("nested too deeply", file=source) from None
    except SopsError as err:
        if err.file is None:
            raise type(err)(str(err), file=source) from None
        raise


_SEMVER_RE: Final = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


KUBERNETES_SECRET_REGEX: Final = "^(data|stringData)$"  # noqa: S105 - a key pattern, not a password
KUBERNETES_MANIFEST_REGEX: Final = "^(apiVersion|kind|metadata)$"


def suggested_rule(documents: Sequence[Any]) -> dict[str, str]:
    """The SOPS rule closest to what sealer seals, so a file keeps its clear parts across an export:
    Secrets only -> encrypted_regex ^(data|stringData)$ (what SOPS's own docs advise for Kubernetes);
    other Kubernetes manifests -> unencrypted_regex ^(apiVersion|kind|metadata)$; else SOPS's default.
    """
    docs = [d for d in documents if isinstance(d, Mapping)]
    if docs and all(d.get("kind") == "Secret" and "apiVersion" in d for d in docs):
        return {"encrypted_regex": KUBERNETES_SECRET_REGEX}
    if docs and all("kind" in d and "apiVersion" in d for d in docs):
        return {"unencrypted_regex": KUBERNETES_MANIFEST_REGEX}
    return {}


def _write(
    branches: list[Any],
    recipients: Sequence[Recipient | str],
    fmt: str,
    now: datetime | None,
    mac_only_encrypted: bool,
    version: str,
    rule_args: Mapping[str, str],
) -> bytes:
    if fmt not in ("yaml", "json"):
        raise SopsUnsupportedError(f"sealer writes SOPS YAML and JSON files, not {fmt}")
    if not _SEMVER_RE.fullmatch(version):
        raise SopsFormatError(f"version {version!r} is not semver, and sops refuses such files")
    rules = [(k, v) for k, v in rule_args.items() if v]
    if len(rules) > 1:
        raise SopsFormatError("give at most one encryption rule (as sops allows one per file)")
    rule = _Rule.make(*(rules[0] if rules else ("unencrypted_suffix", DEFAULT_UNENCRYPTED_SUFFIX)))
    names = list(dict.fromkeys(_recipient_text(r) for r in recipients))
    if not names:
        raise SopsNoKeyError("no age recipient to encrypt to")
    if fmt == "json":
        if len(branches) != 1:
            raise SopsUnsupportedError("a SOPS JSON file holds one document; this input has several")
        branches = [_strip_comments(b) for b in branches]
    else:
        branches = [_hoist_orphans(b) for b in branches]
    for branch in branches:
        if not isinstance(branch, Branch):
            raise SopsUnsupportedError("every document must be a mapping")
        if any(k == "sops" for k, _ in branch):
            raise SopsFormatError("the top-level key sops is reserved for SOPS metadata")
    key = os.urandom(32)
    digest = hashlib.sha512()
    if mac_only_encrypted:
        digest.update(_MAC_ONLY_ENCRYPTED_INIT)

    def on_leaf(value: Any, path: list[str], stack: list[tuple[str, ...]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rule.encrypts(path, stack, is_comment)
        if (not mac_only_encrypted or encrypted) and not is_comment:
            digest.update(_to_bytes(value))
        return _encrypt_value(value, key, _aad(path)) if encrypted else value

    encrypted = [_walk_branch(b, [], [], on_leaf) for b in branches]
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    lastmodified = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata: dict[str, Any] = {
        "age": [Branch([("enc", age.encrypt(key, [n], armor=True).decode("ascii")), ("recipient", n)]) for n in names],
        "lastmodified": lastmodified,
        "mac": _encrypt_value(digest.hexdigest().upper(), key, lastmodified),
        rule.name: rule.value,
        "version": version,
    }
    if mac_only_encrypted:
        metadata["mac_only_encrypted"] = True
    block = Branch(sorted(metadata.items()))
    out = [Branch([*b, ("sops", block)]) for b in encrypted]
    if fmt == "json":
        return (_emit_json(out[0]) + "\n").encode("utf-8")
    return _emit_yaml(out).encode("utf-8", "surrogateescape")
