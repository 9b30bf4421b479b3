"""A sealed YAML file: find the values to seal, splice tokens in, keep every other byte.

We parse with ruamel.yaml's composer only to learn *where* each scalar is (character offsets) and
what it resolves to; all edits are splices into the original text. That is what keeps comments,
order, quoting and indentation byte-identical, which a dump-after-load cannot promise. Nothing is
constructed from tags, so untrusted YAML cannot instantiate objects.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .envelope import Context, Token, is_token, parse_token
from .errors import InputError, TokenError
from .paths import Path, format_path

FORMAT_VERSION = 1
SECRET_SECTIONS = ("data", "stringData")
MANIFEST_KEYS = ("apiVersion", "kind", "metadata")
SCOPES_SECRET = ("strict", "namespace", "env")
MAX_NODES = 200_000

_STR = "tag:yaml.org,2002:str"
_TYPE_OF_TAG = {
    _STR: "s",
    "tag:yaml.org,2002:int": "i",
    "tag:yaml.org,2002:float": "f",
    "tag:yaml.org,2002:bool": "t",
    "tag:yaml.org,2002:timestamp": "d",
    "tag:yaml.org,2002:binary": "b",
}
_NULL = "tag:yaml.org,2002:null"

Selector = Callable[[str], bool]
"""Given a formatted value path of a non-Secret document, should it be sealed?"""


@dataclass
class Meta:
    """The document's top-level `sealer:` block."""

    version: int
    env: str
    scope: str

    def render(self, indent: str) -> str:
        lines = ("sealer:", f"  version: {self.version}", f"  env: {self.env}", f"  scope: {self.scope}")
        return "".join(f"{indent}{line}\n" for line in lines)


@dataclass
class Leaf:
    """One selected scalar: sealed (a token) or still plaintext."""

    path: Path
    node: Any
    section: str | None  # "data"/"stringData" in Secrets, else None

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
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        nodes = list(YAML(typ="rt").compose_all(text))
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
    docs = []
    for i, root in enumerate(nodes):
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


def _document(index: int, root: Any, source: str, selector: Selector | None) -> Document:
    if root.flow_style:
        raise InputError(
            f"document {index}: a flow-style top-level mapping ({{...}}) is not supported",
            file=source,
            hint="write the top level in block style",
        )
    kind = _scalar_str(_root_get(root, "kind"))
    md = _root_get(root, "metadata")
    namespace = name = ""
    if md is not None and md.id == "mapping":
        namespace = _scalar_str(_map_get(md, "namespace")) or ""
        name = _scalar_str(_map_get(md, "name")) or ""
    meta, span = _meta(index, root, source)
    doc = Document(index, root, kind, namespace, name, meta, span)
    seen: set[int] = set()
    if doc.is_secret:
        for section in SECRET_SECTIONS:
            node = _root_get(root, section)
            if node is None or (node.id == "scalar" and node.tag == _NULL):
                continue
            if node.id != "mapping":
                raise InputError(f"document {index}: {section} must be a mapping", file=source)
            for k, v in node.value:
                path: Path = (section, str(k.value))
                _check_leaf(v, path, source, seen)
                if v.id != "scalar":
                    raise InputError(f"{format_path(path)} must be a string, not a {v.id}", file=source)
                if v.tag == _NULL:
                    continue
                if section == "data" and not is_token(v.value):
                    _b64decode(v.value, path, source)
                doc.leaves.append(Leaf(path, v, section))
    else:
        skip = ("sealer", *MANIFEST_KEYS) if doc.is_manifest else ("sealer",)
        for k, v in root.value:
            if _scalar_str(k) in skip:
                continue
            for path, leaf in _walk(v, (str(k.value),), source, seen):
                if selector is None or (
                    leaf.value is not None and (is_token(leaf.value) or selector(format_path(path)))
                ):
                    doc.leaves.append(Leaf(path, leaf, None))
    return doc


def _walk(node: Any, path: Path, source: str, seen: set[int]) -> Iterator[tuple[Path, Any]]:
    _check_leaf(node, path, source, seen)
    if node.id == "mapping":
        for k, v in node.value:
            if k.id != "scalar":
                raise InputError(f"{format_path(path)}: complex mapping keys are not supported", file=source)
            yield from _walk(v, (*path, str(k.value)), source, seen)
    elif node.id == "sequence":
        for i, v in enumerate(node.value):
            yield from _walk(v, (*path, i), source, seen)
    elif node.tag != _NULL:
        yield path, node


def _check_leaf(node: Any, path: Path, source: str, seen: set[int]) -> None:
    if id(node) in seen or getattr(node, "anchor", None):
        raise InputError(
            f"{format_path(path)}: anchors and aliases are not supported in sealed values",
            file=source,
            hint="write the value out in full",
        )
    seen.add(id(node))
    if len(seen) > MAX_NODES:
        raise InputError(f"more than {MAX_NODES} values", file=source)
    tag = str(node.tag)
    if node.id == "scalar" and tag != _NULL and tag not in _TYPE_OF_TAG:
        raise InputError(f"{format_path(path)}: custom tag {tag} is not supported", file=source)


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
        return Meta(FORMAT_VERSION, env, scope), (k.start_mark.index, _block_end(v))
    return None, None


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


# --- plaintext values ----------------------------------------------------------------------------


def plaintext_of(leaf: Leaf, source: str) -> tuple[str, bytes]:
    """The (type, bytes) that get sealed for a plaintext leaf."""
    node = leaf.node
    tag = str(node.tag)
    if leaf.section == "data":
        return "b", _b64decode(node.value, leaf.path, source)
    vtype = _TYPE_OF_TAG[tag]
    if vtype == "i":
        return "i", str(_construct(node)).encode()
    if vtype == "f":
        return "f", _float_text(_construct(node)).encode()
    if vtype == "t":
        return "t", b"true" if _construct(node) else b"false"
    if vtype == "b":
        return "b", _construct(node)
    if vtype == "d":
        return "d", str(node.value).encode()
    return "s", str(node.value).encode()


def _construct(node: Any) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).constructor.construct_object(node)


def _float_text(x: float) -> str:
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    return repr(x)


def python_value(vtype: str, data: bytes, *, section: str | None) -> Any:
    """An unsealed value as Python data (what a YAML safe load of the plaintext would give)."""
    if vtype == "b":
        return base64.b64encode(data).decode() if section == "data" else data
    text = data.decode("utf-8")
    if vtype == "i":
        return int(text)
    if vtype == "f":
        return float({".inf": "inf", "-.inf": "-inf", ".nan": "nan"}.get(text, text))
    if vtype == "t":
        return text == "true"
    return text


def to_python(root: Any, opened: dict[int, Any], source: str) -> Any:
    """The document as Python data, straight from the composed nodes (no second parse), with
    unsealed values in place and the sealer: block left out. Aliases are expanded against a budget,
    so an alias bomb fails instead of exhausting memory."""
    from ruamel.yaml import YAML

    constructor = YAML(typ="safe", pure=True).constructor
    budget = [MAX_NODES]

    def build(node: Any, top: bool = False) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise InputError(f"more than {MAX_NODES} values once aliases are expanded", file=source)
        if id(node) in opened:
            return opened[id(node)]
        if node.id == "mapping":
            return {_key(k): build(v) for k, v in node.value if not (top and _scalar_str(k) == "sealer")}
        if node.id == "sequence":
            return [build(v) for v in node.value]
        if str(node.tag) not in _TYPE_OF_TAG and node.tag != _NULL:
            raise InputError(f"custom tag {node.tag} is not supported", file=source)
        return constructor.construct_object(node)

    def _key(k: Any) -> Any:
        if k.id != "scalar":
            raise InputError("complex mapping keys are not supported", file=source)
        return build(k)

    return build(root, top=True)


def render_scalar(vtype: str, data: bytes, *, section: str | None) -> str:
    """A YAML scalar (one line) for an unsealed value of the given type."""
    if vtype == "b":
        b64 = base64.b64encode(data).decode()
        return b64 if section == "data" else f"!!binary {b64}"
    text = data.decode("utf-8")
    if vtype in "iftd":
        return text
    if _PLAIN_SAFE.fullmatch(text) and text.lower() not in _PLAIN_WORDS:
        return text
    return quote_string(text)


# Strings written back unquoted: a letter first, no YAML indicators, not a word YAML 1.1 reads as bool/null.
_PLAIN_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_./@+-]*")
_PLAIN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})


def quote_string(s: str) -> str:
    """A YAML double-quoted string; every non-printable character escaped."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= o < 0x7F or (o > 0xA0 and _printable(o)):
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _printable(o: int) -> bool:
    # YAML's printable set, minus the BOM and line/paragraph separators that would confuse readers.
    return not (0xD800 <= o <= 0xDFFF or o in (0xFEFF, 0xFFFE, 0xFFFF, 0x2028, 0x2029, 0x85))


# --- splicing ------------------------------------------------------------------------------------


@dataclass
class Edit:
    start: int
    end: int
    text: str


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    out = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise AssertionError("overlapping edits")
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def replace_scalar(text: str, node: Any, new: str, *, quote_ok: bool = True) -> Edit:
    """Replace a scalar's source span with `new`, keeping the original quote style where it can."""
    start, end = node.start_mark.index, scalar_end(text, node)
    style = node.style
    if style in ("|", ">"):
        return Edit(start, end, new)
    if style == "'" and quote_ok and "'" not in new and "\n" not in new:
        return Edit(start, end, f"'{new}'")
    if style == '"' and quote_ok and new.startswith("ENC["):
        return Edit(start, end, f'"{new}"')
    if _in_flow(text, start) and new.startswith("ENC["):
        return Edit(start, end, f'"{new}"')
    return Edit(start, end, new)


def scalar_end(text: str, node: Any) -> int:
    """End of a node's own text. A block scalar's span runs on over trailing blank lines: not those."""
    end = int(node.end_mark.index)
    if node.id == "scalar" and node.style in ("|", ">"):
        end = node.start_mark.index + len(text[node.start_mark.index : end].rstrip(" \t\r\n"))
    return end


def _in_flow(text: str, index: int) -> bool:
    """Is the scalar at `index` inside a flow collection ({...} or [...]) on its line?"""
    line_start = text.rfind("\n", 0, index) + 1
    before = text[line_start:index]
    return before.count("{") + before.count("[") > before.count("}") + before.count("]")


def meta_edit(text: str, doc: Document, meta: Meta) -> Edit | None:
    """Insert or update the document's sealer: block; None when it is already right."""
    if doc.meta == meta:
        return None
    indent = " " * doc.root.start_mark.column
    block = meta.render(indent)
    if doc.meta_span is not None:
        start, end = doc.meta_span
        # Replace whole lines: from the key's line start to the end of the block's last line.
        line_start = text.rfind("\n", 0, start) + 1
        end = line_end(text, end)
        return Edit(line_start, end, block)
    at = doc.root.end_mark.index
    at = line_end(text, at)
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return Edit(at, at, prefix + block)


def remove_meta(text: str, doc: Document) -> Edit | None:
    if doc.meta_span is None:
        return None
    start, end = doc.meta_span
    return Edit(text.rfind("\n", 0, start) + 1, line_end(text, end), "")


def line_end(text: str, index: int) -> int:
    """The index just past the line break ending the line that `index` is on (or at a line start)."""
    if index == 0 or index >= len(text) or text[index - 1] == "\n":
        return index
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1
