"""The `sops:` block: its master keys, rule, MAC and times, read as leniently as sops reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._errors import SopsFormatError
from ._tree import DEFAULT_UNENCRYPTED_SUFFIX, GO_BOOLS, INT_RE, RULES, go_float, go_time, plain

KEY_TYPE_NAMES: Final = {
    "age": "age",
    "pgp": "PGP",
    "kms": "AWS KMS",
    "gcp_kms": "GCP KMS",
    "azure_kv": "Azure Key Vault",
    "hc_vault": "HashiCorp Vault",
    "hckms": "HuaweiCloud KMS",
}


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
        return [name for t, name in KEY_TYPE_NAMES.items() if t in seen]


def _weak_str(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return go_float(value) if isinstance(value, float) else str(value)
    raise SopsFormatError(f"sops metadata: {name} is not a string")


def _weak_bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value in GO_BOOLS:
        return GO_BOOLS[value]
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
    if isinstance(value, str) and INT_RE.fullmatch(value):
        return int(value)
    raise SopsFormatError(f"sops metadata: {name} is not an integer")


def _key_group(md: Mapping[str, Any], where: str) -> dict[str, list[Any]]:
    group: dict[str, list[Any]] = {}
    for kind in KEY_TYPE_NAMES:
        entries = md.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SopsFormatError(f"sops metadata: {where}{kind} is not a list of keys")
        if kind == "age":
            group[kind] = [
                AgeKey(_weak_str(e.get("recipient"), "recipient"), _weak_str(e.get("enc"), "enc")) for e in entries
            ]
        else:
            group[kind] = list(entries)
    return group


def parse_metadata(tree: Any) -> SopsMetadata:
    md = plain(tree)
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
    if go_time(lastmodified) is None:
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
