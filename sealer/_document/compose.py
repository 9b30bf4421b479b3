"""Compose a sealed YAML file: where each value is, what it is, and which ones get sealed.

Everything that decides what a file *is* lives here, apart from what its values mean and how it is
edited. ruamel.yaml's safe composer gives nodes with character offsets (nothing is constructed from
tags, so untrusted YAML cannot instantiate objects); on top of them this module refuses what sealer
does not support (YAML 1.1, duplicate or complex keys, custom tags, anchors on sealed values, more
than `MAX_NODES` values), parses the top-level `sealer:` block and its signature into `Meta` and
`Signature`, and selects the leaves to seal (`selects`): every `data` and `stringData` value of a
Secret; elsewhere what the file's `.sealer.yaml` rule (the `Selector`) picks, else nothing in a
Kubernetes manifest and every scalar in any other document. ruamel is imported inside `load`, not
at module import, so commands that read no YAML do not pay for it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._format import Context, Token, is_token, parse_token
from .._format.valuepath import Path, format_path
from .._yamlout import yaml_string
from ..errors import InputError, TokenError

FORMAT_VERSION = 1
SECRET_SECTIONS = ("data", "stringData")
MANIFEST_KEYS = ("apiVersion", "kind", "metadata")
SCOPES_SECRET = ("strict", "namespace", "env")
MAX_NODES = 200_000

_STR = "tag:yaml.org,2002:str"
TYPE_OF_TAG = {
    _STR: "s",
    "tag:yaml.org,2002:int": "i",
    "tag:yaml.org,2002:float": "f",
    "tag:yaml.org,2002:bool": "t",
    "tag:yaml.org,2002:timestamp": "d",
    "tag:yaml.org,2002:binary": "b",
}
_NULL = "tag:yaml.org,2002:null"

_YAML_11 = re.compile(r"^%YAML[ \t]+1\.[01]\b", re.M)

Selector = Callable[[str], bool]
"""A `.sealer.yaml` rule: given a formatted value path of a non-Secret document, should it be sealed?
`None` (no rule covers the file) means the default of `selects`."""


@dataclass(frozen=True)
class Signature:
    """Who signed a document (`sealer.signature`): an allowed signer's name, key id and Ed25519
    signature (base64url) over the document's canonical content (sealer._signing, docs/format.md §6)."""

    signer: str
    key: str  # the signer key id: 16 lowercase hex digits
    sig: str


SIGNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_SIGNER_KID = re.compile(r"[0-9a-f]{16}")
_SIG = re.compile(r"[A-Za-z0-9_-]{86}")  # 64 bytes, base64url without padding


@dataclass
class Meta:
    """The document's top-level `sealer:` block."""

    version: int
    env: str
    scope: str
    signature: Signature | None = None

    def render(self, indent: str, newline: str = "\n") -> str:
        lines = ["sealer:", f"  version: {self.version}", f"  env: {self.env}", f"  scope: {self.scope}"]
        if self.signature is not None:
            s = self.signature
            lines += ["  signature:", f"    signer: {yaml_string(s.signer)}", f"    key: {s.key}", f"    sig: {s.sig}"]
        return "".join(f"{indent}{line}{newline}" for line in lines)


@dataclass
class Leaf:
    """One selected scalar: sealed (a token) or still plaintext."""

    path: Path
    node: Any
    section: str | None  # "data"/"stringData" in Secrets, else None
    in_flow: bool = False  # inside a {...} or [...] collection: tokens must be quoted there

    @property
    def text(self) -> str:
        return str(self.node.value)

    @property
    def sealed(self) -> bool:
        return is_token(self.node.value) and self.node.tag == _STR

    def token(self, where: str) -> Token:
        try:
            return parse_token(self.text)
        except TokenError as e:
            raise TokenError(f"{format_path(self.path)}: {e}", file=where) from None


@dataclass
class Document:
    index: int
    root: Any  # ruamel MappingNode
    kind: str | None
    namespace: str
    name: str
    meta: Meta | None
    meta_span: tuple[int, int] | None
    leaves: list[Leaf] = field(default_factory=list)

    @property
    def is_secret(self) -> bool:
        return self.kind == "Secret"

    @property
    def is_manifest(self) -> bool:
        return self.kind is not None and _root_get(self.root, "apiVersion") is not None

    def default_scope(self) -> str:
        return "strict" if self.is_secret else "env"

    def context(self, env: str, scope: str, path: Path) -> Context:
        return Context(env=env, scope=scope, namespace=self.namespace, name=self.name, path=path)

    def find(self, path: Path) -> Leaf | None:
        return next((leaf for leaf in self.leaves if leaf.path == path), None)


@dataclass
class SealedFile:
    """A parsed file. `source` names it in messages; `text` is the exact original content."""

    source: str
    text: str
    docs: list[Document]

    def all_leaves(self) -> Iterator[tuple[Document, Leaf]]:
        for d in self.docs:
            for leaf in d.leaves:
                yield d, leaf

    @property
    def env(self) -> str | None:
        envs = {d.meta.env for d in self.docs if d.meta is not None}
        if len(envs) > 1:
            raise InputError(
                f"documents are sealed for different environments ({', '.join(sorted(envs))})",
                file=self.source,
            )
        return envs.pop() if envs else None


def load(text: str, source: str, selector: Selector | None = None) -> SealedFile:
    """Parse `text` and select the values to seal. Errors name `source` and the line."""
    docs = []
    for i, root in enumerate(compose_nodes(text, source)):
        if root is None or (root.id == "scalar" and root.tag == _NULL):
            continue
        if root.id != "mapping":
            raise InputError(
                f"document {i} is not a mapping",
                file=source,
                hint="sealer seals YAML documents whose top level is a mapping",
            )
        docs.append(_document(i, root, source, selector))
    return SealedFile(source, text, docs)


def compose_nodes(text: str, source: str) -> list[Any]:
    """The node tree of each YAML 1.2 document of `text`: the one reading of YAML that every door
    shares (sealed files, and krm's ResourceList). Errors are one line naming `source`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if _YAML_11.search(text):
        raise InputError(
            "YAML 1.1 documents (%YAML 1.1) are not supported",
            file=source,
            hint="remove the directive; sealer reads YAML 1.2",
        )
    try:
        nodes = list(YAML(typ="safe", pure=True).compose_all(text))
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "cannot parse"
        raise InputError(
            f"malformed YAML{where}: {problem}",
            file=source,
            hint="fix the syntax, or restore the file from git",
        ) from None
    except RecursionError:
        raise InputError("YAML nested too deeply", file=source) from None
    except (ValueError, OverflowError):  # e.g. a \U escape beyond U+10FFFF, which ruamel does not catch
        raise InputError("malformed YAML: an escape sequence names no Unicode character", file=source) from None
    return nodes


def _document(index: int, root: Any, source: str, selector: Selector | None) -> Document:
    if root.flow_style:
        raise InputError(
            f"document {index}: a flow-style top-level mapping ({{...}}) is not supported",
            file=source,
            hint="write the top level in block style",
        )
    _check_keys(root, (), source)
    kind = _scalar_str(_root_get(root, "kind"))
    md = _root_get(root, "metadata")
    namespace = name = ""
    if md is not None and md.id == "mapping":
        namespace = _scalar_str(_map_get(md, "namespace")) or ""
        name = _scalar_str(_map_get(md, "name")) or ""
    meta, span = _meta(index, root, source)
    doc = Document(index, root, kind, namespace, name, meta, span)
    budget = [MAX_NODES]
    if doc.is_secret:
        for section in SECRET_SECTIONS:
            node = _root_get(root, section)
            if node is None or (node.id == "scalar" and node.tag == _NULL):
                continue
            if node.id != "mapping":
                raise InputError(f"document {index}: {section} must be a mapping", file=source)
            for path, leaf, in_flow, shared in _walk(node, (section,), False, False, source, budget, set()):
                if len(path) != 2:
                    raise InputError(f"{format_path(path[:2])} must be a string, not a collection", file=source)
                _check_selected(leaf, path, shared, source)
                if section == "data" and not is_token(leaf.value):
                    _b64decode(leaf.value, path, source)
                doc.leaves.append(Leaf(path, leaf, section, in_flow))
    else:
        skip = ("sealer", *MANIFEST_KEYS) if doc.is_manifest else ("sealer",)
        seen: set[int] = set()
        for k, v in root.value:
            if _scalar_str(k) in skip:
                continue
            for path, leaf, in_flow, shared in _walk(v, (str(k.value),), False, False, source, budget, seen):
                if is_token(leaf.value) or selects(doc, selector, path):
                    _check_selected(leaf, path, shared, source)
                    doc.leaves.append(Leaf(path, leaf, None, in_flow))
    return doc


def selects(doc: Document, selector: Selector | None, path: Path) -> bool:
    """Is a plaintext leaf of a non-Secret document sealed? The one selection rule (docs/format.md §2).

    A `.sealer.yaml` rule (`selector`) decides when one covers the file. Without one, a Kubernetes
    manifest other than a Secret (a Deployment, a ConfigMap: `apiVersion` and `kind`) seals
    nothing, so `seal` leaves it as it is and `check` does not ask for it; any other document (Helm
    values, app config) seals every scalar. A token is always a value, whatever the rule says."""
    if selector is not None:
        return selector(format_path(path))
    return not doc.is_manifest


def _walk(
    node: Any, path: Path, in_flow: bool, shared: bool, source: str, budget: list[int], seen: set[int]
) -> Iterator[tuple[Path, Any, bool, bool]]:
    """Non-null scalar leaves as (path, node, inside a flow collection?, under an anchor?).

    A collection reached a second time is an alias: it is not walked again (so alias bombs and
    recursive documents cost nothing), and everything under an anchor is marked shared.
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise InputError(f"more than {MAX_NODES} values", file=source)
    shared = shared or bool(getattr(node, "anchor", None))
    if node.id in ("mapping", "sequence"):
        if id(node) in seen:
            return
        seen.add(id(node))
        flow = bool(node.flow_style)
        if node.id == "mapping":
            _check_keys(node, path, source)
            for k, v in node.value:
                yield from _walk(v, (*path, str(k.value)), flow, shared, source, budget, seen)
        else:
            for i, v in enumerate(node.value):
                yield from _walk(v, (*path, i), flow, shared, source, budget, seen)
    elif node.tag != _NULL:
        yield path, node, in_flow, shared


def _check_keys(node: Any, path: Path, source: str) -> None:
    """YAML requires unique keys; a duplicate would seal two values under one context and deploy
    whichever a reader keeps. Keys must also be text we can bind (no lone surrogates)."""
    seen: set[str] = set()
    for k, _v in node.value:
        if k.id != "scalar":
            raise InputError(f"{format_path(path) or 'top level'}: complex mapping keys are not supported", file=source)
        key = str(k.value)
        _check_text(key, (*path, key), source)
        if key in seen:
            raise InputError(f"{format_path((*path, key))}: duplicate key", file=source, hint="keep one of them")
        seen.add(key)


def _check_text(text: str, path: Path, source: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InputError(
            f"{format_path(path)}: a lone UTF-16 surrogate escape (\\uD800-\\uDFFF) is not text",
            file=source,
            hint="write the character itself, or one \\U escape",
        )


def _check_selected(node: Any, path: Path, shared: bool, source: str) -> None:
    if shared:
        raise InputError(
            f"{format_path(path)}: anchors and aliases are not supported in sealed values",
            file=source,
            hint="write the value out in full",
        )
    tag = str(node.tag)
    if tag not in TYPE_OF_TAG:
        raise InputError(f"{format_path(path)}: custom tag {tag} is not supported", file=source)
    _check_text(str(node.value), path, source)


def _meta(index: int, root: Any, source: str) -> tuple[Meta | None, tuple[int, int] | None]:
    for k, v in root.value:
        if _scalar_str(k) != "sealer":
            continue
        bad = InputError(
            f"document {index}: the sealer: block is malformed", file=source, hint="restore the file from git"
        )
        if v.id != "mapping":
            raise bad
        fields = {_scalar_str(kk): _scalar_str(vv) for kk, vv in v.value}
        version, env, scope = fields.get("version"), fields.get("env"), fields.get("scope")
        if not version or not env or not scope:
            raise bad
        if version != str(FORMAT_VERSION):
            raise InputError(
                f"document {index}: sealer format version {version} is not supported",
                file=source,
                hint="upgrade sealer",
            )
        return Meta(FORMAT_VERSION, env, scope, _signature(index, v, source)), (k.start_mark.index, _block_end(v))
    return None, None


def _signature(index: int, block: Any, source: str) -> Signature | None:
    node = _map_get(block, "signature")
    if node is None:
        return None
    fields = {_scalar_str(k): _scalar_str(v) for k, v in node.value} if node.id == "mapping" else {}
    signer, key, sig = fields.get("signer"), fields.get("key"), fields.get("sig")
    if not (
        signer and key and sig and SIGNER_NAME.fullmatch(signer) and _SIGNER_KID.fullmatch(key) and _SIG.fullmatch(sig)
    ):
        raise InputError(
            f"document {index}: the signature in the sealer: block is malformed",
            file=source,
            hint="restore the file from git, or sign it again with --sign-with",
        )
    return Signature(signer, key, sig)


def _block_end(node: Any) -> int:
    return int(node.end_mark.index)


def _root_get(root: Any, key: str) -> Any:
    return _map_get(root, key)


def _map_get(node: Any, key: str) -> Any:
    for k, v in node.value:
        if k.id == "scalar" and k.value == key:
            return v
    return None


def _scalar_str(node: Any) -> str | None:
    if node is None or node.id != "scalar" or node.tag == _NULL:
        return None
    return str(node.value)


def _b64decode(text: str, path: Path, source: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{format_path(path)} is not valid base64 (Secret data values must be)",
            file=source,
            hint="put plain text under stringData instead",
        ) from None
