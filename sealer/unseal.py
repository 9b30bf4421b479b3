"""The opening side: unseal a sealed file into its plaintext, in memory. Needs private keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import envelope
from .document import SealedFile, apply_edits, load, remove_meta, render_scalar, replace_scalar
from .errors import EnvironmentMismatch, InputError
from .fsio import MAX_FILE_BYTES, read_text
from .keys import Identity
from .paths import format_path


@dataclass
class UnsealedDoc:
    index: int
    kind: str | None
    name: str
    is_manifest: bool
    content: Any  # the plaintext document as Python data (dicts, lists, scalars)


@dataclass
class Unsealed:
    """A file's plaintext: `text` keeps the original layout (sealer: blocks removed)."""

    source: str
    env: str | None
    text: str
    docs: list[UnsealedDoc]
    values: int


def unseal_file(
    sf: SealedFile,
    identity_for: Callable[[str], Identity | None],
    *,
    env: str | None = None,
    structured: bool = True,
) -> Unsealed:
    """Open every token. Fails on the first value that does not open; nothing partial is returned."""
    file_env = sf.env
    if env is not None and file_env is not None and file_env != env:
        raise EnvironmentMismatch(f"is sealed for environment {file_env!r}, not {env!r}", file=sf.source)
    edits = []
    count = 0
    for doc, leaf in sf.all_leaves():
        if not leaf.sealed:
            continue
        if doc.meta is None:
            raise InputError(
                f"document {doc.index} has sealed values but no sealer: block",
                file=sf.source,
                hint="restore the file from git",
            )
        tok = leaf.token(sf.source)
        ctx = doc.context(doc.meta.env, doc.meta.scope, leaf.path)
        data = envelope.unseal(tok, ctx, identity_for, where=sf.source)
        wanted = {"stringData": "s", "data": "b"}.get(leaf.section or "")
        if wanted is not None and tok.vtype != wanted:
            raise InputError(
                f"{format_path(leaf.path)} holds a value of the wrong type for its section", file=sf.source
            )
        edits.append(
            replace_scalar(
                sf.text, leaf.node, render_scalar(tok.vtype, data, section=leaf.section), quote_ok=False
            )
        )
        count += 1
    for doc in sf.docs:
        m = remove_meta(sf.text, doc)
        if m is not None:
            edits.append(m)
    text = apply_edits(sf.text, edits)
    docs = _structured(text, sf) if structured else []
    return Unsealed(sf.source, file_env, text, docs, count)


def _structured(text: str, sf: SealedFile) -> list[UnsealedDoc]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError:
        raise InputError("the unsealed text does not parse", file=sf.source) from None
    out = []
    by_index = {d.index: d for d in sf.docs}
    for i, content in enumerate(loaded):
        d = by_index.get(i)
        if d is None:
            continue
        out.append(UnsealedDoc(i, d.kind, d.name, d.is_manifest, content))
    return out


def collect(paths: Sequence[Path]) -> list[Path]:
    """Files to unseal: given files as they are; in directories, the YAML files that hold sealed
    documents (a cheap text check first, so plain manifests beside them are left out)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel_parts = f.relative_to(p).parts
                if any(part.startswith(".") for part in rel_parts) or f.suffix not in (".yaml", ".yml"):
                    continue
                if f.is_file() and _looks_sealed(f):
                    out.append(f)
        else:
            out.append(p)
    return out


def _looks_sealed(f: Path) -> bool:
    try:
        with open(f, "rb") as fh:
            head = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return True  # let the real read report it
    return b"ENC[sealer." in head or b"\nsealer:" in head


def unseal_paths(
    paths: Sequence[Path],
    identity_for: Callable[[str], Identity | None],
    *,
    env: str | None = None,
    structured: bool = True,
) -> list[Unsealed]:
    """Unseal files and directories; all or nothing."""
    files = collect(paths)
    if not files:
        raise InputError(f"no sealed files found in {', '.join(map(str, paths))}")
    return [
        unseal_file(load(read_text(f), str(f)), identity_for, env=env, structured=structured) for f in files
    ]
