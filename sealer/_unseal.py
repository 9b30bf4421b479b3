"""The opening side: unseal a sealed file into its plaintext, in memory. Needs private keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _envelope as envelope
from ._document import (
    SealedFile,
    apply_edits,
    load,
    remove_meta,
    render_scalar,
    replace_scalar,
    to_python,
)
from ._fsio import read_text
from ._keys import Identity
from ._valuepath import Path as Path_
from ._valuepath import format_path
from .errors import EnvironmentMismatch, InputError, UnsealError

if TYPE_CHECKING:
    from ._registry import Registry
    from ._signing import SignaturePolicy


@dataclass(frozen=True)
class Acceptance:
    """What deploy-time unsealing accepts in one environment (from keys/ENV.yaml)."""

    env: str
    opens: Callable[[str], bool]  # False for retired and unknown kids
    not_before: int | None

    @classmethod
    def of(cls, registry: Registry) -> Acceptance:
        return cls(registry.env, registry.opens, registry.not_before_ts())

    def check(
        self, tok: envelope.Token, path: Path_, source: str, identity_for: Callable[[str], Identity | None]
    ) -> Callable[[str], Identity | None]:
        if self.not_before is not None and tok.sealed_at < self.not_before:
            raise UnsealError(
                f"value at {format_path(path)} was sealed before {self.env}'s not_before and is revoked",
                file=source,
                hint=f"set a fresh value: sealer set {source} '{format_path(path)}'",
            )
        usable = [k for k in tok.kids if self.opens(k)]
        if not usable:
            raise UnsealError(
                f"value at {format_path(path)} is sealed only to retired or unknown key {' and '.join(tok.kids)}",
                file=source,
                hint="a custodian re-seals it to the current keys (sealer reseal) or sets it again",
            )
        return lambda kid: identity_for(kid) if kid in usable else None


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
    kids: tuple[str, ...] = ()  # every key id the file's values are sealed to (for the audit log)


def unseal_file(
    sf: SealedFile,
    identity_for: Callable[[str], Identity | None],
    *,
    env: str | None = None,
    structured: bool = True,
    accept: Acceptance | None = None,
    signatures: SignaturePolicy | None = None,
) -> Unsealed:
    """Open every token. Fails on the first value that does not open; nothing partial is returned.

    With `accept` (the environment's registry rules), values sealed only to retired keys, or
    sealed before the environment's `not_before`, are refused. With `signatures` (the
    environment's allowed signers and policy, `SignaturePolicy.of`), every signature must verify,
    and under `require_signature` an unsigned document is refused, before any value is opened.
    """
    file_env = sf.env
    if env is not None and file_env is not None and file_env != env:
        raise EnvironmentMismatch(f"is sealed for environment {file_env!r}, not {env!r}", file=sf.source)
    if signatures is not None:
        signatures.check(sf)
    edits = []
    kids: set[str] = set()
    opened: dict[int, tuple[str, bytes, str | None]] = {}  # id(node) -> plaintext, for the structured view
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
        lookup = identity_for if accept is None else accept.check(tok, leaf.path, sf.source, identity_for)
        data = envelope.unseal(tok, ctx, lookup, where=sf.source)
        wanted = {"stringData": "s", "data": "b"}.get(leaf.section or "")
        if wanted is not None and tok.vtype != wanted:
            raise InputError(
                f"{format_path(leaf.path)} holds a value of the wrong type for its section", file=sf.source
            )
        if tok.vtype != "b":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise UnsealError(
                    f"value at {format_path(leaf.path)} opened, but is not UTF-8 text as its type says",
                    file=sf.source,
                    hint="it was sealed by another tool or altered before sealing; set it again",
                ) from None
        rendered = render_scalar(tok.vtype, data, section=leaf.section)
        edits.append(replace_scalar(sf.text, leaf.node, rendered, in_flow=leaf.in_flow, quote_ok=False))
        opened[id(leaf.node)] = (tok.vtype, data, leaf.section)
        kids.update(tok.kids)
    for doc in sf.docs:
        m = remove_meta(sf.text, doc)
        if m is not None:
            edits.append(m)
    text = apply_edits(sf.text, edits)
    docs = (
        [UnsealedDoc(d.index, d.kind, d.name, d.is_manifest, to_python(d.root, opened, sf.source)) for d in sf.docs]
        if structured
        else []
    )
    return Unsealed(sf.source, file_env, text, docs, len(opened), tuple(sorted(kids)))


def _candidates(paths: Sequence[Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named explicitly?) for each given file and each YAML file below each given directory."""
    for p in paths:
        if not p.is_dir():
            yield p, True
            continue
        for f in sorted(p.rglob("*")):
            hidden = any(part.startswith(".") for part in f.relative_to(p).parts)
            if not hidden and f.suffix in (".yaml", ".yml") and f.is_file():
                yield f, False


def _rules(
    f: Path, env: str | None, cache: dict[tuple[Path, str], tuple[Acceptance, SignaturePolicy | None]]
) -> tuple[Acceptance | None, SignaturePolicy | None]:
    """The registry and signature rules of a file's environment, if the file lives in a sealer
    repository (read once per repository and environment; a malformed .sealer.yaml fails closed,
    since it may require signatures)."""
    from ._config import Config, find_root

    root = find_root(f)
    if root is None or env is None:
        return None, None
    if (root, env) not in cache:
        from ._registry import Registry
        from ._signing import SignaturePolicy

        reg = Registry.load(root, env)
        cfg = Config.load(root)
        policy = cfg.environments[env].policy if env in cfg.environments else None
        cache[(root, env)] = (Acceptance.of(reg), SignaturePolicy.of(reg, policy) if policy else None)
    return cache[(root, env)]


def unseal_paths(
    paths: Sequence[Path],
    identity_for: Callable[[str], Identity | None],
    *,
    env: str | None = None,
    structured: bool = True,
) -> tuple[list[Unsealed], list[str]]:
    """Unseal files and directories, all or nothing; returns the files and notes on what was skipped.

    Named files must be sealed for `env`. In directories, files without sealed documents (plain
    manifests) are left out, and with `env` so are files sealed for other environments: a deploy job
    can point at the whole tree. Signatures are checked by the environment's rules.
    """
    out: list[Unsealed] = []
    notes: list[str] = []
    cache: dict[tuple[Path, str], tuple[Acceptance, SignaturePolicy | None]] = {}
    for f, explicit in _candidates(paths):
        text = read_text(f)
        if not explicit and "ENC[sealer." not in text and "sealer:" not in text:
            continue
        sf = load(text, str(f))
        file_env = sf.env
        if not explicit and (file_env is None or (env is not None and file_env != env)):
            if file_env is not None:
                notes.append(f"{f}: sealed for {file_env}, not {env}; skipped")
            continue
        accept, signatures = _rules(f, file_env, cache)
        out.append(unseal_file(sf, identity_for, env=env, structured=structured, accept=accept, signatures=signatures))
    if not out:
        raise InputError(f"no sealed files found in {', '.join(map(str, paths))}")
    return out, notes
