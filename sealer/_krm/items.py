"""Items as they arrive on stdin, taken apart without re-encoding any of them.

Two shapes come in: a YAML stream (kustomize's legacy exec plugins, Helm's post-renderer, a pipe
after `kustomize build`) and a KRM `ResourceList` (kpt, kustomize's KRM functions). Each item is
handed on as its own text, exactly as it came, so an item sealer does not touch goes back out
byte for byte and a sealed one is read by the same loader as a sealed file. A stream is split at
its document markers by text alone: a line starting `---` or `...` can only be one (YAML forbids
it inside a quoted scalar, and block scalars are indented), so documents without sealed values
are never parsed. A ResourceList is composed once, and each item cut out of it by its node's span.

The orchestrators also annotate items (kpt's `internal.config.kubernetes.io/path`, kustomize's
`kustomize.config.k8s.io/id`, ...). `set_aside` lifts those out of a sealed item before it is
checked, since a signature covers the document as its signer wrote it, and `restore` puts them
back on the output: the orchestrator needs them to match its outputs to its inputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .._document import Document

API_VERSIONS = ("config.kubernetes.io/v1", "config.kubernetes.io/v1alpha1")
_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)[^\n]*(?:\n|$)", re.M)
_SEALER_KEY = re.compile(r"""^["']?sealer["']?[ \t]*:""", re.M)  # a top-level `sealer:` key

# Annotations an orchestrator adds to the items it passes a function or plugin. The user's own
# kustomize annotations (needs-hash, behavior, local-config) are not among them.
_ORCHESTRATOR = frozenset(
    {
        "config.kubernetes.io/index",
        "config.kubernetes.io/path",
        "config.kubernetes.io/origin",
        "config.k8s.io/id",
        "kustomize.config.k8s.io/id",
        "alpha.config.kubernetes.io/transformations",
    }
)
_ORCHESTRATOR_PREFIX = "internal.config.kubernetes.io/"
PATH_ANNOTATIONS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")


def may_be_sealed(text: str) -> bool:
    """Cheap pre-filter: can this text hold a sealed document (a token, or a `sealer:` block)?"""
    from .._format import mentions_tokens

    return mentions_tokens(text) or _SEALER_KEY.search(text) is not None


def is_orchestrator_annotation(key: str) -> bool:
    return key in _ORCHESTRATOR or key.startswith(_ORCHESTRATOR_PREFIX)


# --- streams ---------------------------------------------------------------------------------------


def split_stream(text: str) -> list[tuple[str, str]]:
    """(marker line, body) per document, in order; joined again they are `text` exactly. The first
    document's marker is "" when the stream does not start with one."""
    pieces: list[tuple[str, str]] = []
    marker, pos = "", 0
    for m in _MARKER.finditer(text):
        pieces.append((marker, text[pos : m.start()]))
        marker, pos = m.group(), m.end()
    pieces.append((marker, text[pos:]))
    if pieces[0] == ("", ""):
        pieces.pop(0)
    return pieces


# --- ResourceLists ---------------------------------------------------------------------------------


@dataclass
class ResourceList:
    api_version: str
    items: list[str]  # each item's text, at column 0, as it came
    function_config: str | None  # its text, as it came
    config: Any  # the functionConfig as data (None without one)


def read_resource_list(text: str) -> ResourceList:
    """Take a ResourceList apart. Refuses anything else: a function that read a stream as a list,
    or the other way round, would hand items on unopened."""
    from .._document.compose import compose_nodes

    where = "the ResourceList on stdin"
    roots = compose_nodes(text, where)
    root = roots[0] if len(roots) == 1 else None
    if root is None or root.id != "mapping":
        raise InputError(
            "is not a ResourceList",
            file=where,
            hint="sealer krm reads a KRM ResourceList; for a plain manifest stream use sealer krm --stream",
        )
    fields = {str(k.value): v for k, v in root.value if k.id == "scalar"}
    kind, api = _scalar(fields.get("kind")), _scalar(fields.get("apiVersion"))
    if kind != "ResourceList" or api not in API_VERSIONS:
        raise InputError(
            f"is a {kind or 'document'} of {api or 'no apiVersion'}, not a ResourceList of {' or '.join(API_VERSIONS)}",
            file=where,
            hint="sealer krm reads a KRM ResourceList; for a plain manifest stream use sealer krm --stream",
        )
    assert api is not None
    items_node = fields.get("items")
    items: list[str] = []
    if items_node is not None and not (items_node.id == "scalar" and items_node.value in ("", "null", "~")):
        if items_node.id != "sequence":
            raise InputError("items is not a list", file=where)
        for i, node in enumerate(items_node.value):
            if node.id != "mapping":
                raise InputError(f"item {i} is not a mapping", file=where)
            items.append(span(text, node, f"item {i} of the ResourceList"))
    config_node = fields.get("functionConfig")
    config_text = config = None
    if config_node is not None and config_node.id == "mapping":
        from ruamel.yaml import YAML

        config_text = span(text, config_node, "the functionConfig")
        config = YAML(typ="safe", pure=True).load(config_text)
    return ResourceList(api, items, config_text, config)


def write_resource_list(api_version: str, items: Sequence[str], function_config: str | None) -> str:
    """A ResourceList of item texts (each at column 0), indented into place line by line."""
    out = [f"apiVersion: {api_version}\n", "kind: ResourceList\n"]
    out.append("items:\n" if items else "items: []\n")
    for text in items:
        out.append(_indent(text, "- "))
    if function_config is not None:
        out.append("functionConfig:\n")
        out.append(_indent(function_config, "  "))
    return "".join(out)


def api_version_of(text: str) -> str:
    """The ResourceList version a caller spoke (for the failure it gets back), v1 by default."""
    m = re.search(r"^apiVersion:[ \t]*[\"']?(config\.kubernetes\.io/v1(?:alpha1)?)\b", text[:65536], re.M)
    return m.group(1) if m else API_VERSIONS[0]


def failure_list(api_version: str, message: str) -> str:
    """The ResourceList a failed function returns: no items (nothing half-opened may leave), and a
    `results` entry of severity error with the one-line message."""
    from .._yamlout import dumps

    result = {"message": message, "severity": "error"}
    return dumps({"apiVersion": api_version, "kind": "ResourceList", "items": [], "results": [result]})


def span(text: str, node: Any, what: str) -> str:
    """A block node's own text, moved to column 0. Every line after the first is indented at least
    as far as the node starts (YAML's rule for a block collection), except comment lines, which
    are dropped; anything else is a layout sealer does not take apart."""
    start, end, col = node.start_mark.index, node.end_mark.index, node.start_mark.column
    if node.flow_style:
        raise InputError(f"{what} is in flow style ({{...}})", hint="pass items in block style (kpt and kustomize do)")
    lines = text[start:end].split("\n")
    out = [lines[0]]
    pad = " " * col
    for line in lines[1:]:
        if line.startswith(pad):
            out.append(line[col:])
        elif not line.strip(" \t\r"):
            out.append("")
        elif line.lstrip(" ").startswith("#"):
            continue
        else:
            raise InputError(f"{what} is laid out in a way sealer cannot cut out", hint="pass it in block style")
    body = "\n".join(out).rstrip(" ")
    return body if body.endswith("\n") else body + "\n"


def _indent(text: str, first: str) -> str:
    pad = " " * len(first)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "".join((first if i == 0 else pad if line else "") + line + "\n" for i, line in enumerate(lines))


def _scalar(node: Any) -> str | None:
    return str(node.value) if node is not None and node.id == "scalar" else None


# --- orchestrator annotations ----------------------------------------------------------------------


@dataclass
class Aside:
    """The orchestrator's annotations lifted out of one item, and where the item's annotations were."""

    values: dict[str, str]  # key -> value, as the orchestrator set them
    order: list[str]  # every annotation key of the item, in its order

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def set_aside(text: str, doc: Document, source: str) -> tuple[str, Aside]:
    """The item's text without the orchestrator's annotations (whole lines cut out; the
    `annotations:` key too when nothing else is left under it), and what was cut."""
    metadata = _get(doc.root, "metadata")
    pair = _pair(metadata, "annotations")
    if pair is None or pair[1].id != "mapping":
        return text, Aside({}, [])
    key_node, annotations = pair
    entries = [(str(k.value), k, v) for k, v in annotations.value if k.id == "scalar"]
    order = [key for key, _, _ in entries]
    lifted = [(key, k, v) for key, k, v in entries if is_orchestrator_annotation(key)]
    if not lifted:
        return text, Aside({}, order)
    if annotations.flow_style:
        raise InputError(
            "metadata.annotations is in flow style ({...}), so the orchestrator's annotations cannot be set aside",
            file=source,
            hint="write the annotations in block style",
        )
    from .._document import Edit, apply_edits, line_end, scalar_end

    values: dict[str, str] = {}
    edits = []
    for key, k, v in lifted:
        if v.id != "scalar":
            raise InputError(f"metadata.annotations.{key} is not a string", file=source)
        values[key] = str(v.value)
        edits.append(Edit(_line_start(text, k.start_mark.index), line_end(text, scalar_end(text, v)), ""))
    if len(lifted) == len(entries):  # the orchestrator added `annotations:` itself
        start = _line_start(text, key_node.start_mark.index)
        edits.append(Edit(start, line_end(text, key_node.end_mark.index), ""))
    return apply_edits(text, edits), Aside(values, order)


def restore(content: Any, aside: Aside) -> Any:
    """The unsealed document with the orchestrator's annotations back, in their old places."""
    if not aside.values or not isinstance(content, dict):
        return content
    md = content.get("metadata")
    md = dict(md) if isinstance(md, dict) else {}
    now = md.get("annotations")
    now = dict(now) if isinstance(now, dict) else {}
    merged = {k: aside.values[k] if k in aside.values else now[k] for k in aside.order if k in aside.values or k in now}
    merged.update({k: v for k, v in now.items() if k not in merged})
    md["annotations"] = merged
    return {**content, "metadata": md}


def previous(aside: Aside, what: str) -> str | None:
    """The first of kustomize's `internal.config.kubernetes.io/previousNames` (`what`="Names") or
    `previousNamespaces`: what the item was called before kustomize renamed it."""
    value = aside.get(f"internal.config.kubernetes.io/previous{what}")
    return value.split(",", 1)[0] if value is not None else None


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _get(node: Any, key: str) -> Any:
    pair = _pair(node, key)
    return pair[1] if pair is not None else None


def _pair(node: Any, key: str) -> tuple[Any, Any] | None:
    if node is None or node.id != "mapping":
        return None
    return next(((k, v) for k, v in node.value if k.id == "scalar" and k.value == key), None)
