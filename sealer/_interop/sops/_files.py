"""Reading a SOPS file (every value opened at its place, the MAC checked) and writing one as
`sops -e` would (a fresh data key, the selected values encrypted, the MAC, the 3.13 metadata)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from ..._fsio import read_bytes
from ..._keys import Identity, Recipient
from ._binary import check_text, secret_yaml
from ._crypto import (
    Mac,
    aad,
    check_mac,
    decrypt_value,
    encrypt_mac,
    encrypt_value,
    new_data_key,
    open_data_key,
    wrap_data_key,
)
from ._errors import SopsError, SopsFormatError, SopsNoKeyError, SopsUnsupportedError
from ._goyaml import emit_yaml
from ._keysources import sops_identities
from ._metadata import SopsMetadata, parse_metadata
from ._stores import FORMATS, WRITABLE, after_decrypt, dump, format_for_path, load_encrypted
from ._tree import (
    DEFAULT_UNENCRYPTED_SUFFIX,
    Branch,
    Comment,
    GoTime,
    Rule,
    fmt_path,
    has_items,
    heads,
    plain,
    walk_document,
)
from ._yamlload import load_yaml

SOPS_VERSION: Final = "3.13.2"
"""The `version` we write: the sops release whose file layout this writer reproduces (valid semver,
which every sops command requires)."""

KUBERNETES_SECRET_REGEX: Final = "^(data|stringData)$"  # noqa: S105 - a key pattern, not a password
KUBERNETES_MANIFEST_REGEX: Final = "^(apiVersion|kind|metadata)$"
_SEMVER_RE: Final = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


@contextlib.contextmanager
def _naming(source: str) -> Iterator[None]:
    """Errors that name no file name `source`; a tree too deep for Python is a SopsFormatError."""
    try:
        yield
    except RecursionError:
        raise SopsFormatError("nested too deeply", file=source) from None
    except SopsError as err:
        if err.file is None:
            raise type(err)(str(err), file=source) from None
        raise


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class SopsFile:
    """A decrypted SOPS file. `documents` is the plaintext as Python data (one per YAML document,
    comments left out); `comments` lists the decrypted comments with their AAD; `raw` is the payload
    of a binary-store file. `to_yaml()` prints the plaintext as `sops -d` would, comments included;
    `to_secret()` gives a binary payload as a Kubernetes Secret."""

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
        with _naming(self.source):
            for branch in self._branches:
                check_text(branch, [])
            return emit_yaml(self._branches)

    def to_secret(self, *, name: str | None = None, key: str | None = None, namespace: str | None = None) -> str:
        """A binary-store file's payload as a plaintext Kubernetes Secret (YAML): the bytes,
        base64-encoded, as `data.KEY`; `name` and `key` default to the file's base name."""
        with _naming(self.source):
            if self.raw is None:
                raise SopsUnsupportedError(f"a SOPS {self.format} file holds a tree, not one payload: use to_yaml()")
            return secret_yaml(self.raw, source=self.source, name=name, key=key, namespace=namespace)


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
    return read(read_bytes(name), fmt or format_for_path(name), identities, environ=environ, source=name)


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
    with _naming(source):
        return _read(data, fmt, identities, environ, source)


def _read(
    data: bytes, fmt: str, identities: Sequence[Identity] | None, environ: Mapping[str, str] | None, source: str
) -> SopsFile:
    if fmt not in FORMATS:
        raise SopsFormatError(f"unknown SOPS store {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SopsFormatError(
            f"not UTF-8 text (bad byte at offset {err.start}), so not a SOPS {fmt} file",
            hint="a file sops encrypted with --input-type binary imports with: sealer import sops --input-type binary",
        ) from None
    branches, meta_tree = load_encrypted(text, fmt, source)
    metadata = parse_metadata(meta_tree)
    ids = list(sops_identities(environ)) if identities is None else list(identities)
    key = open_data_key(metadata, ids)
    rule = Rule.make(*metadata.rule)
    mac = Mac(metadata.mac_only_encrypted)
    comments: list[tuple[str, str]] = []

    def on_leaf(value: Any, path: list[str], stack: list[tuple[str, ...]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rule.encrypts(path, stack, is_comment)
        if encrypted:
            value = decrypt_value(value, key, path)
            if is_comment:
                comments.append((aad(path), value.text))
        if not is_comment:
            mac.add(value, encrypted)
        return value

    decrypted = [walk_document(b, on_leaf) for b in branches]
    computed = mac.hexdigest()
    check_mac(metadata, key, computed)
    decrypted, raw = after_decrypt(fmt, decrypted)
    documents = [plain(b, datetimes=True) for b in decrypted]
    return SopsFile(source, fmt, documents, metadata, comments, raw, computed, key, decrypted)


# --- writing ---------------------------------------------------------------------------------------


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
        return _write([_to_tree(d, []) for d in documents], recipients, fmt, now, mac_only_encrypted, version, rule)
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
    with _naming(source):
        return _write(load_yaml(text, source), recipients, fmt, now, mac_only_encrypted, version, rule)


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
    if fmt not in WRITABLE:
        raise SopsUnsupportedError(f"sealer writes SOPS YAML and JSON files, not {fmt}")
    if not _SEMVER_RE.fullmatch(version):
        raise SopsFormatError(f"version {version!r} is not semver, and sops refuses such files")
    rules = [(k, v) for k, v in rule_args.items() if v]
    if len(rules) > 1:
        raise SopsFormatError("give at most one encryption rule (as sops allows one per file)")
    rule = Rule.make(*(rules[0] if rules else ("unencrypted_suffix", DEFAULT_UNENCRYPTED_SUFFIX)))
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
    key = new_data_key()
    mac = Mac(mac_only_encrypted)

    def on_leaf(value: Any, path: list[str], stack: list[tuple[str, ...]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rule.encrypts(path, stack, is_comment)
        if not is_comment:
            mac.add(value, encrypted)
        return encrypt_value(value, key, path) if encrypted else value

    encrypted = [walk_document(b, on_leaf) for b in branches]
    lastmodified = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata: dict[str, Any] = {
        "age": [Branch([("enc", wrap_data_key(key, n)), ("recipient", n)]) for n in names],
        "lastmodified": lastmodified,
        "mac": encrypt_mac(mac.hexdigest(), key, lastmodified),
        rule.name: rule.value,
        "version": version,
    }
    if mac_only_encrypted:
        metadata["mac_only_encrypted"] = True
    block = Branch(sorted(metadata.items()))
    return dump(fmt, [Branch([*b, ("sops", block)]) for b in encrypted])


def _to_tree(value: Any, path: list[str]) -> Any:
    """Python data as a sops tree (dicts to Branches, datetimes to GoTime), checked on the way."""
    if isinstance(value, Branch):
        return value
    if isinstance(value, Mapping):
        out = Branch()
        for k, v in value.items():
            if not isinstance(k, str):
                raise SopsUnsupportedError(f"{fmt_path(path)}: the key {k!r} is not a string (SOPS needs string keys)")
            out.append((k, _to_tree(v, [*path, k])))
        return out
    if isinstance(value, (list, tuple)):
        return [_to_tree(v, path) for v in value]
    if isinstance(value, (datetime, date)):
        return GoTime.from_datetime(value)
    if value is None or isinstance(value, (str, bool, int, float, GoTime, Comment, bytes)):
        return value
    raise SopsUnsupportedError(f"{fmt_path(path)}: cannot store a value of type {type(value).__name__}")


def _hoist_orphans(value: Any) -> Any:
    """Comments inside a collection that has no item are written before it, in its parent; move them
    there before encrypting so that their AAD is the one sops will compute."""
    if not isinstance(value, list):
        return value
    is_map = isinstance(value, Branch)
    out: list[Any] = Branch() if is_map else []
    for entry in value:
        v = entry[1] if is_map else entry
        if isinstance(v, list) and not has_items(v):
            orphans = [Comment(c.text) for c in heads(v) if isinstance(c, Comment)]
            out += [(c, None) for c in orphans] if is_map else orphans
            v = Branch() if isinstance(v, Branch) else []
        out.append((entry[0], _hoist_orphans(v)) if is_map else _hoist_orphans(v))
    return out


def _strip_comments(value: Any) -> Any:
    if isinstance(value, Branch):
        return Branch((k, _strip_comments(v)) for k, v in value if not isinstance(k, Comment))
    if isinstance(value, list):
        return [_strip_comments(v) for v in value if not isinstance(v, Comment)]
    return value


def _recipient_text(value: Recipient | str) -> str:
    from ..._keys import X25519Recipient, parse_recipient

    recipient = parse_recipient(value) if isinstance(value, str) else value
    if not isinstance(recipient, X25519Recipient):
        raise SopsUnsupportedError(f"cannot export to a {recipient.kind} recipient: SOPS files here use age X25519")
    return recipient.encode()
