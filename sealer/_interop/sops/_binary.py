"""Bytes in a SOPS file. A binary-store payload becomes what sealer holds arbitrary bytes in: a
Kubernetes Secret with the payload, base64-encoded, as one `data` value (sealer seals `data` values
as bytes). The Secret's name and the data key default to ones made from the file name; both are
bound into every sealed value, so they are chosen at import time, not edited afterwards. In the
other stores a value, key or comment that is not UTF-8 text is named before YAML is written."""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Final

from ..._yamlout import dumps
from ._errors import SopsUnsupportedError
from ._tree import Branch, Comment, fmt_path

_DATA_KEY_RE: Final = re.compile(r"[-._a-zA-Z0-9]+")  # Kubernetes: a Secret's data keys
_LABEL: Final = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_NAME_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")  # a DNS-1123 subdomain (metadata.name)
_NAMESPACE_RE: Final = re.compile(_LABEL)  # a DNS-1123 label


def default_key(source: str) -> str:
    """The data key a file name gives: its base name (`tls.key`, `keystore.jks`)."""
    return os.path.basename(source)


def default_name(source: str) -> str:
    """The Secret name a file name gives: its base name in lower case, other characters as `-`."""
    name = re.sub(r"[^a-z0-9.]+", "-", os.path.basename(source).lower())
    name = re.sub(r"\.{2,}", ".", name)
    return re.sub(r"-*\.-*", ".", name).strip(".-")[:253].strip(".-")


def secret_yaml(payload: bytes, *, source: str, name: str | None, key: str | None, namespace: str | None) -> str:
    """The payload as a plaintext Kubernetes Secret (`type: Opaque`, the bytes under `data.KEY`)."""
    name = default_name(source) if name is None else name
    key = default_key(source) if key is None else key
    if not _NAME_RE.fullmatch(name) or len(name) > 253:
        raise SopsUnsupportedError(
            f"{name!r} is not a valid Secret name (lower-case letters, digits, '-' and '.')",
            hint="give one with --name",
        )
    if not _DATA_KEY_RE.fullmatch(key) or len(key) > 253:
        raise SopsUnsupportedError(
            f"{key!r} is not a valid key of a Secret's data (letters, digits, '-', '_' and '.')",
            hint="give one with --key",
        )
    metadata = {"name": name}
    if namespace is not None:
        if not _NAMESPACE_RE.fullmatch(namespace) or len(namespace) > 63:
            raise SopsUnsupportedError(f"{namespace!r} is not a valid namespace", hint="fix --namespace")
        metadata["namespace"] = namespace
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {key: base64.b64encode(payload).decode("ascii")},
    }
    return dumps(secret)


def check_text(value: Any, path: list[str]) -> None:
    """Refuse, by its place, a key, value or comment of a decrypted tree that is not UTF-8 text (sops
    keeps raw bytes in a string; a YAML file cannot hold them)."""
    if isinstance(value, list):
        is_map = isinstance(value, Branch)
        for entry in value:
            head = entry[0] if is_map else entry
            if isinstance(head, Comment):
                _text(head.text, f"a comment in {fmt_path(path)}")
            elif is_map:
                _text(head, f"a key in {fmt_path(path)}")
                check_text(entry[1], [*path, head])
            else:
                check_text(entry, path)
    elif isinstance(value, (str, bytes)):
        _text(value, f"the value at {fmt_path(path)}")


def _text(value: str | bytes, what: str) -> None:
    try:
        (value if isinstance(value, bytes) else value.encode("utf-8")).decode("utf-8")
    except UnicodeError:
        raise SopsUnsupportedError(
            f"{what} is not UTF-8 text, and a sealer file is text",
            hint="keep bytes in a binary-store SOPS file (sops encrypt --input-type binary): it imports as a Secret",
        ) from None
